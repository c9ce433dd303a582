/* ids — UUIDv7 identifiers and random bytes.
 *
 * Owns: an id generator (ids_gen) whose single atomic word keeps ids strictly increasing within the
 * process (RFC 9562 method 3: 12-bit sub-millisecond counter in rand_a; on overflow the millisecond is
 * advanced), so id order is creation order. Lock-free; one generator per server, shared by all threads. */
#ifndef MEMFUSE_IDS_H
#define MEMFUSE_IDS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define UUID_STR_LEN 36

typedef struct ids_gen {
    _Atomic uint64_t state; /* (unix_ms << 12) | counter */
} ids_gen;

void ids_gen_init(ids_gen *g);
void ids_uuid7(ids_gen *g, char out[UUID_STR_LEN + 1]);
/* Fills buf with cryptographically random bytes (getrandom); returns 0 or -1. */
int ids_random(void *buf, size_t n);
/* Lower-case hex of n random bytes into out (2n+1 bytes). Returns 0 or -1. */
int ids_random_hex(char *out, size_t nbytes);
/* 1 if s has the textual shape of a UUID (8-4-4-4-12 hex). */
int ids_is_uuid(const char *s);

#endif
