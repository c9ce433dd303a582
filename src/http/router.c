/* router — see router.h. Linear scan over a few dozen routes, comparing segment by segment without
 * allocating; fast enough that it does not show in a profile next to the JSON and the store. */
#include "http/router.h"

#include <string.h>

/* Does path (already split into segs) match pattern? Fills params. */
static int match(const char *pattern, char **segs, int nsegs, const char **params, int *nparams)
{
    int i = 0, np = 0;
    const char *p = pattern;
    while (*p == '/')
        p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (i >= nsegs)
            return 0;
        if (len == 2 && p[0] == '{' && p[1] == '}') {
            if (np >= HTTP_MAX_PARAMS)
                return 0;
            params[np++] = segs[i];
        } else if (strlen(segs[i]) != len || memcmp(segs[i], p, len) != 0) {
            return 0;
        }
        i++;
        p += len;
        while (*p == '/')
            p++;
    }
    if (i != nsegs)
        return 0;
    *nparams = np;
    return 1;
}

route_result router_match(const route *table, int n, const char *method, const char *path, char *scratch,
                          size_t scratch_len, http_request *req, const route **out, char *allow, size_t allow_len)
{
    size_t plen = strlen(path);
    if (plen + 1 > scratch_len)
        return ROUTE_NOT_FOUND;
    memcpy(scratch, path, plen + 1);
    /* one trailing slash is ignored */
    if (plen > 1 && scratch[plen - 1] == '/')
        scratch[--plen] = '\0';
    char *segs[16];
    int nsegs = 0;
    char *s = scratch;
    if (*s != '/')
        return ROUTE_NOT_FOUND;
    while (*s) {
        if (*s == '/') {
            *s++ = '\0';
            if (*s == '/' || (*s == '\0' && plen > 0 && nsegs > 0))
                return ROUTE_NOT_FOUND; /* empty segment: "//" */
            if (*s == '\0')
                break;
            if (nsegs == 16)
                return ROUTE_NOT_FOUND;
            segs[nsegs++] = s;
            continue;
        }
        s++;
    }
    const char *head_as = strcmp(method, "HEAD") == 0 ? "GET" : method;
    int path_known = 0;
    size_t ao = 0;
    if (allow_len)
        allow[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *params[HTTP_MAX_PARAMS];
        int np = 0;
        if (!match(table[i].pattern, segs, nsegs, params, &np))
            continue;
        if (strcmp(table[i].method, head_as) == 0) {
            for (int k = 0; k < np; k++)
                req->params[k] = params[k];
            req->n_params = np;
            *out = &table[i];
            return ROUTE_FOUND;
        }
        path_known = 1;
        size_t ml = strlen(table[i].method);
        if (allow_len && ao + ml + 3 < allow_len && !strstr(allow, table[i].method)) {
            if (ao) {
                memcpy(allow + ao, ", ", 2);
                ao += 2;
            }
            memcpy(allow + ao, table[i].method, ml);
            ao += ml;
            allow[ao] = '\0';
        }
    }
    return path_known ? ROUTE_BAD_METHOD : ROUTE_NOT_FOUND;
}
