/* testutil — small helpers shared by the C unit tests (header-only; every function is static inline so a
 * test that does not use one gets no unused-function warning).
 *
 *   tu_mkdtemp()      a fresh directory under $TMPDIR (or /tmp); malloc'ed path, never NULL (fails the test)
 *   tu_rmtree(path)   removes the directory tree and frees path
 *   tu_jw_take(w)     the writer's text as a malloc'ed string, the writer emptied (fails the test on error)
 *   tu_streq_free()   compares a malloc'ed string with the expected one and frees it
 *   tu_contains()     does a string array hold s?
 *   tu_run_threads()  starts n threads on fn(arg_i) and joins them */
#ifndef MEMFUSE_TESTUTIL_H
#define MEMFUSE_TESTUTIL_H

#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "http/json.h"

static inline char *tu_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t n = strlen(base) + 32;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/memfuse-unit-XXXXXX", base);
    if (!mkdtemp(p)) {
        free(p);
        fail_msg("mkdtemp failed under %s", base);
    }
    return p;
}

static inline int tu_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tu_rmtree(char *path)
{
    if (!path)
        return;
    nftw(path, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

static inline char *tu_jw_take(jw *w)
{
    size_t len = 0;
    char *s = jw_take(w, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    return s;
}

/* Compares and frees; the message shows both strings on a mismatch. */
#define tu_streq_free(got, want)                                                                              \
    do {                                                                                                      \
        char *tu_g_ = (got);                                                                                  \
        const char *tu_w_ = (want);                                                                           \
        if (strcmp(tu_g_, tu_w_) != 0) {                                                                      \
            print_error("got:  %s\nwant: %s\n", tu_g_, tu_w_);                                                \
            free(tu_g_);                                                                                      \
            fail();                                                                                           \
        }                                                                                                     \
        free(tu_g_);                                                                                          \
    } while (0)

static inline int tu_contains(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

static inline void tu_run_threads(int n, void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_t th[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fn, (char *)args + (size_t)i * arg_size), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
}

#endif
