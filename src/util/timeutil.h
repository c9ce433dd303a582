/* timeutil — clocks and the wire timestamp format.
 *
 * Timestamps on the wire are UTC, fixed width, microseconds: "2026-01-31T12:34:56.123456Z" (27 chars),
 * so that string order is time order. */
#ifndef MEMFUSE_TIMEUTIL_H
#define MEMFUSE_TIMEUTIL_H

#include <stdint.h>

#define TIME_ISO_LEN 27

int64_t time_now_us(void);        /* wall clock, microseconds since the epoch */
int64_t time_mono_ns(void);       /* monotonic clock, nanoseconds */
void time_iso(int64_t us, char out[TIME_ISO_LEN + 1]);
void time_now_iso(char out[TIME_ISO_LEN + 1]);
/* Parses an ISO-8601 date-time ("2026-01-31T12:34:56[.ffffff][Z|+hh:mm]", or a bare date) into
 * microseconds since the epoch. Returns 0 on success, -1 if it is not such a time. */
int time_parse_iso(const char *s, int64_t *us_out);

#endif
