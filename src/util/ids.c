/* ids — see ids.h. */
#include "util/ids.h"
#include "util/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

void ids_gen_init(ids_gen *g) { atomic_init(&g->state, 0); }

int ids_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static const char hexd[] = "0123456789abcdef";

int ids_random_hex(char *out, size_t nbytes)
{
    unsigned char b[64];
    if (nbytes > sizeof b || ids_random(b, nbytes) != 0)
        return -1;
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hexd[b[i] >> 4];
        out[2 * i + 1] = hexd[b[i] & 15];
    }
    out[2 * nbytes] = '\0';
    return 0;
}

void ids_uuid7(ids_gen *g, char out[UUID_STR_LEN + 1])
{
    uint64_t now = (uint64_t)(time_now_us() / 1000) << 12;
    uint64_t old = atomic_load_explicit(&g->state, memory_order_relaxed), next;
    do {
        next = now > old ? now : old + 1; /* counter overflow carries into the millisecond */
    } while (!atomic_compare_exchange_weak_explicit(&g->state, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    uint64_t ms = next >> 12;
    unsigned seq = (unsigned)(next & 0xfff);
    unsigned char r[8];
    if (ids_random(r, sizeof r) != 0)
        memset(r, 0, sizeof r); /* getrandom cannot fail for 8 bytes on Linux >= 3.17; stay unique anyway */
    unsigned char b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (seq >> 8));
    b[7] = (unsigned char)(seq & 0xff);
    b[8] = (unsigned char)(0x80 | (r[0] & 0x3f));
    memcpy(b + 9, r + 1, 7);
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hexd[b[i] >> 4];
        *o++ = hexd[b[i] & 15];
    }
    *o = '\0';
}

int ids_is_uuid(const char *s)
{
    for (int i = 0; i < UUID_STR_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return s[UUID_STR_LEN] == '\0';
}
