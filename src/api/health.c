/* health — SPEC §2. Cheap (the SDK calls it before every request): no store access, no secrets. */
#include "api/api.h"
#include "util/timeutil.h"

void api_health(http_request *req, http_response *res)
{
    const app *ap = api_app(req);
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_kstr(j, "status", "ok");
    jw_kstr(j, "version", MEMFUSE_VERSION);
    jw_kdouble(j, "uptime_s", (double)(time_now_us() - ap->started_us) / 1e6);
    jw_kstr(j, "store", ap->cfg->store_kind);
    jw_kstr(j, "embedder", ap->cfg->embedder ? ap->cfg->embedder : "none");
    jw_obj_end(j);
    env_end(res, "Server is healthy");
}
