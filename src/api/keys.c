/* keys — SPEC §9, a user's API keys. The plain key is returned once, at creation; the store keeps its
 * SHA-256. A client may bring its own key (at least 16 characters); otherwise one is generated:
 * "mf_" and 64 hex digits of getrandom(). */
#include "api/api.h"
#include "util/sha256.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

#define KEY_MIN 16
#define KEY_MAX 256

static void write_key(jw *j, const store_apikey *k, const char *plain)
{
    jw_obj(j);
    jw_kstr(j, "id", k->id);
    jw_kstr(j, "user_id", k->user_id);
    jw_kstr(j, "name", k->name);
    jw_kstr(j, "key", plain);
    jw_key(j, "permissions");
    if (k->permissions)
        jw_raw(j, k->permissions, strlen(k->permissions));
    else
        jw_null(j);
    jw_kstr(j, "created_at", k->created_at);
    jw_kstr(j, "expires_at", k->expires_at);
    jw_obj_end(j);
}

void api_keys_create(http_request *req, http_response *res)
{
    vctx v;
    v_init(&v, req->a);
    cJSON *body = api_body(req, res, &v);
    if (!body)
        goto out;
    const char *name = v_string(&v, body, NULL, "name", 0, API_NAME_MAX);
    const char *key = v_string(&v, body, NULL, "key", V_NONEMPTY, KEY_MAX);
    if (key && strlen(key) < KEY_MIN)
        v_add(&v, "key", "string_too_short", "String should have at least 16 characters");
    const cJSON *perm = cJSON_GetObjectItemCaseSensitive(body, "permissions");
    char *perm_json = NULL;
    if (perm && !cJSON_IsNull(perm)) {
        if (!cJSON_IsObject(perm)) {
            v_add(&v, "permissions", "dict_type", "Input should be a valid dictionary");
        } else {
            char *p = cJSON_PrintUnformatted(perm);
            perm_json = p ? arena_strdup(req->a, p) : NULL;
            cJSON_free(p);
            if (!perm_json || !json_utf8_valid(perm_json, strlen(perm_json)))
                v_add(&v, "permissions", "dict_type", "Input should be a valid dictionary");
        }
    }
    const char *exp_in = v_string(&v, body, NULL, "expires_at", 0, 64);
    char expires[TIME_ISO_LEN + 1];
    int64_t exp_us;
    if (exp_in) {
        if (time_parse_iso(exp_in, &exp_us) != 0)
            v_add(&v, "expires_at", "datetime_from_date_parsing", "Input should be a valid datetime");
        else
            time_iso(exp_us, expires);
    }
    if (!v_ok(&v)) {
        v_respond(&v, res);
        goto out;
    }
    const char *user_id = req->params[0];
    store_entity u;
    if (api_load_user(req, res, user_id, &u))
        goto out;
    char generated[3 + 64 + 1];
    if (!key) {
        memcpy(generated, "mf_", 3);
        if (ids_random_hex(generated + 3, 32) != 0) {
            api_store_error(res, STORE_ERROR, "create API key");
            goto out;
        }
        key = generated;
    }
    char hash[65];
    sha256_hex(key, strlen(key), hash);
    store *st = api_app(req)->st;
    store_apikey k;
    int rc = st->ops->apikey_create(st, user_id, name, hash, perm_json, exp_in ? expires : NULL, req->a, &k);
    if (rc == STORE_NO_USER) {
        api_user_not_found(res, user_id);
    } else if (rc == STORE_CONFLICT) {
        env_error(res, 400, "API key already exists", "key", "API key already exists");
    } else if (rc != STORE_OK) {
        api_store_error(res, rc, "create API key");
    } else {
        jw *j = env_begin(res, 201);
        jw_obj(j);
        jw_key(j, "api_key");
        write_key(j, &k, key);
        jw_obj_end(j);
        env_end(res, "API key created successfully");
    }
out:
    v_free(&v);
}

void api_keys_list(http_request *req, http_response *res)
{
    const char *user_id = req->params[0];
    store_entity u;
    if (api_load_user(req, res, user_id, &u))
        return;
    store *st = api_app(req)->st;
    store_apikey *keys;
    size_t n;
    int rc = st->ops->apikey_list(st, user_id, req->a, &keys, &n);
    if (rc != STORE_OK) {
        api_store_error(res, rc, "retrieve API keys");
        return;
    }
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_key(j, "api_keys");
    jw_arr(j);
    for (size_t i = 0; i < n; i++)
        write_key(j, &keys[i], "********");
    jw_arr_end(j);
    jw_obj_end(j);
    env_end(res, "API keys retrieved successfully");
}

void api_keys_delete(http_request *req, http_response *res)
{
    const char *user_id = req->params[0], *key_id = req->params[1];
    store_entity u;
    if (api_load_user(req, res, user_id, &u))
        return;
    store *st = api_app(req)->st;
    int rc = st->ops->apikey_delete(st, user_id, key_id);
    if (rc == STORE_NOT_FOUND) {
        char msg[640];
        snprintf(msg, sizeof msg, "API key with ID '%s' not found for user '%s'", key_id, user_id);
        env_error(res, 404, msg, "key_id", msg);
        return;
    }
    if (rc != STORE_OK) {
        api_store_error(res, rc, "delete API key");
        return;
    }
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_kstr(j, "key_id", key_id);
    jw_obj_end(j);
    env_end(res, "API key deleted successfully");
}
