/* envelope — see envelope.h. */
#include "http/envelope.h"

void env_reset(http_response *res)
{
    jw_free(&res->body);
    jw_init(&res->body);
    res->no_body = 0;
}

static void head(http_response *res, int code, int ok)
{
    env_reset(res);
    res->status = code;
    jw *w = &res->body;
    jw_obj(w);
    jw_kstr(w, "status", ok ? "success" : "error");
    jw_kint(w, "code", code);
    jw_key(w, "data");
}

jw *env_begin(http_response *res, int code)
{
    head(res, code, 1);
    return &res->body;
}

void env_end(http_response *res, const char *message)
{
    jw *w = &res->body;
    jw_kstr(w, "message", message);
    jw_knull(w, "errors");
    jw_obj_end(w);
}

void env_errors_begin(http_response *res, int code, const char *message)
{
    head(res, code, 0);
    jw *w = &res->body;
    jw_null(w);
    jw_kstr(w, "message", message);
    jw_key(w, "errors");
    jw_arr(w);
}

void env_errors_item(http_response *res, const char *field, const char *field_message)
{
    jw *w = &res->body;
    jw_obj(w);
    jw_kstr(w, "field", field);
    jw_kstr(w, "message", field_message);
    jw_obj_end(w);
}

void env_errors_end(http_response *res)
{
    jw_arr_end(&res->body);
    jw_obj_end(&res->body);
}

void env_error(http_response *res, int code, const char *message, const char *field, const char *field_message)
{
    env_errors_begin(res, code, message);
    env_errors_item(res, field ? field : "general", field_message ? field_message : message);
    env_errors_end(res);
}

void env_detail(http_response *res, int code, const char *detail)
{
    env_reset(res);
    res->status = code;
    jw_obj(&res->body);
    jw_kstr(&res->body, "detail", detail);
    jw_obj_end(&res->body);
}
