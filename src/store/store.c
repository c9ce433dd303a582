/* store — backend selection and helpers shared by every backend. See store.h. */
#include "store/store.h"

#include <stdio.h>
#include <string.h>

store *sq_store_open(const store_config *cfg, char *err, size_t errlen);

store *store_open(const store_config *cfg, char *err, size_t errlen)
{
    const char *kind = cfg->kind ? cfg->kind : "sqlite";
    if (strcmp(kind, "sqlite") == 0)
        return sq_store_open(cfg, err, errlen);
    if (strcmp(kind, "postgres") == 0) {
        snprintf(err, errlen, "the postgres store is not part of this build yet; use --store sqlite");
        return NULL;
    }
    snprintf(err, errlen, "unknown store '%s' (expected sqlite or postgres)", kind);
    return NULL;
}

const char *store_rc_name(int rc)
{
    static const char *const names[] = {"ok", "not found", "conflict", "no such user", "no such agent",
                                        "no such session", "unavailable", "error"};
    return rc >= 0 && rc <= STORE_ERROR ? names[rc] : "unknown";
}

char *store_session_default_name(arena *a, const char *user_name, const char *agent_name)
{
    char hex[9];
    if (ids_random_hex(hex, 4) != 0)
        return NULL;
    return arena_sprintf(a, "%s-%s-%s", user_name, agent_name, hex);
}
