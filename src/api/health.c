/* health — SPEC §2. Cheap (the SDK calls it before every request): no store access, no secrets.
 * (ext) "llm" and "layers" say whether the M1/M2 layers run and whether the LLM answers. */
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
    /* (ext) the LLM layers: "off" without an LLM; else whether its last call succeeded (no call yet: "ok") */
    const char *llm_state = "off";
    if (ap->llm) {
        llm_stats ls;
        llm_get_stats(ap->llm, &ls);
        llm_state = ls.last_error_us > ls.last_ok_us ? "degraded" : "ok";
    }
    jw_kstr(j, "llm", llm_state);
    jw_key(j, "layers");
    jw_arr(j);
    jw_str(j, "M0");
    if (ap->layers) {
        jw_str(j, "M1");
        jw_str(j, "M2");
    }
    jw_arr_end(j);
    jw_obj_end(j);
    env_end(res, "Server is healthy");
}
