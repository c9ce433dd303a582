/* envelope — the response shape of SPEC.md §0.1: {"status","code","data","message","errors"}.
 *
 * Success: env_begin() writes the head up to "data": and the caller writes the data value; env_end()
 * closes with the message. Errors: env_error() writes a whole error envelope with one errors item;
 * env_errors_begin()/env_errors_item()/env_errors_end() write several. The HTTP status always equals
 * the envelope's code. */
#ifndef MEMFUSE_ENVELOPE_H
#define MEMFUSE_ENVELOPE_H

#include "http/http.h"

jw *env_begin(http_response *res, int code);
void env_end(http_response *res, const char *message);

void env_error(http_response *res, int code, const char *message, const char *field, const char *field_message);
void env_errors_begin(http_response *res, int code, const char *message);
void env_errors_item(http_response *res, const char *field, const char *field_message);
void env_errors_end(http_response *res);

/* {"detail": text} bodies of the framework-level 404/405 answers. */
void env_detail(http_response *res, int code, const char *detail);

/* Resets a response whose body was partly written (e.g. a handler failed half-way). */
void env_reset(http_response *res);

#endif
