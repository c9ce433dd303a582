/* store — backend selection and helpers shared by every backend. See store.h. */
#include "store/store.h"

#include <stdio.h>
#include <string.h>

store *sq_store_open(const store_config *cfg, char *err, size_t errlen);
store *pg_store_open(const store_config *cfg, char *err, size_t errlen);

store *store_open(const store_config *cfg, char *err, size_t errlen)
{
    const char *kind = cfg->kind ? cfg->kind : "sqlite";
    if (strcmp(kind, "sqlite") == 0)
        return sq_store_open(cfg, err, errlen);
    if (strcmp(kind, "postgres") == 0)
        return pg_store_open(cfg, err, errlen);
    snprintf(err, errlen, "unknown store '%s' (expected sqlite or postgres)", kind);
    return NULL;
}

const char *store_rc_name(int rc)
{
    static const char *const names[] = {"ok", "not found", "conflict", "no such user", "no such agent",
                                        "no such session", "unavailable", "error"};
    return rc >= 0 && rc <= STORE_ERROR ? names[rc] : "unknown";
}

/* Length of at most max bytes of s, not cutting a UTF-8 sequence. */
static int utf8_prefix(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

char *store_session_default_name(arena *a, const char *user_name, const char *agent_name)
{
    char hex[9];
    if (ids_random_hex(hex, 4) != 0)
        return NULL;
    /* each part is cut to 123 bytes so the whole stays within the 256-byte name limit */
    return arena_sprintf(a, "%.*s-%.*s-%s", utf8_prefix(user_name, 123), user_name, utf8_prefix(agent_name, 123),
                         agent_name, hex);
}
