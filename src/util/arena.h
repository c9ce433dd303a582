/* arena — bump allocator for per-request memory.
 *
 * Owns: a chain of blocks. Everything allocated from an arena is freed at once by arena_free() (or
 * arena_reset(), which keeps the first block for reuse). Not thread-safe: one arena per request. An
 * allocation failure returns NULL; callers treat it as an internal error. */
#ifndef MEMFUSE_ARENA_H
#define MEMFUSE_ARENA_H

#include <stddef.h>

/* The largest single allocation an arena serves (larger requests return NULL without calling malloc). */
#define ARENA_MAX_ALLOC ((size_t)1 << 32)

typedef struct arena_block arena_block;
typedef struct arena {
    arena_block *head;
    size_t total;
} arena;

void arena_init(arena *a);
void *arena_alloc(arena *a, size_t n);               /* 16-byte aligned, uninitialised */
void *arena_calloc(arena *a, size_t count, size_t n); /* zeroed, overflow-checked */
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_sprintf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_reset(arena *a);
void arena_free(arena *a);

#endif
