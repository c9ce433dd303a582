/* auth — API keys and tenancy (SPEC §1).
 *
 * Off by default: every request acts as admin. On: the key comes from "Authorization: Bearer <key>"
 * (or "X-API-Key: <key>"); the configured admin key reaches everything; any other key is hashed with
 * SHA-256 and looked up, and reaches only its own user. Keys are never stored or logged in plain text. */
#include "api/api.h"
#include "util/sha256.h"
#include "util/timeutil.h"

#include <string.h>
#include <strings.h>

static void unauthorized(http_response *res, const char *message, const char *field_message)
{
    env_error(res, 401, message, "api_key", field_message);
}

/* constant-time comparison of two NUL-terminated strings */
static int same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return d == 0;
}

int api_authenticate(http_request *req, http_response *res)
{
    const app *ap = api_app(req);
    if (!ap->cfg->auth) {
        req->auth_admin = 1;
        return 0;
    }
    const char *key = NULL;
    const char *h = http_header(req, "Authorization");
    if (h && *h) {
        if (strncasecmp(h, "Bearer ", 7) != 0) {
            unauthorized(res, "Authentication failed: Invalid API key format", "Expected 'Bearer <key>'");
            return -1;
        }
        key = h + 7;
        while (*key == ' ')
            key++;
        if (!*key) {
            unauthorized(res, "Authentication failed: Invalid API key format", "Expected 'Bearer <key>'");
            return -1;
        }
    } else {
        key = http_header(req, "X-API-Key");
    }
    if (!key || !*key) {
        unauthorized(res, "Authentication failed: Missing API key", "API key is required");
        return -1;
    }
    if (ap->cfg->admin_key && *ap->cfg->admin_key && same_secret(key, ap->cfg->admin_key)) {
        req->auth_admin = 1;
        return 0;
    }
    char hash[65];
    sha256_hex(key, strlen(key), hash);
    store_apikey k;
    int rc = ap->st->ops->apikey_lookup(ap->st, hash, req->a, &k);
    if (rc == STORE_OK && k.expires_at) {
        int64_t exp;
        if (time_parse_iso(k.expires_at, &exp) != 0 || exp <= time_now_us())
            rc = STORE_NOT_FOUND;
    }
    if (rc == STORE_NOT_FOUND) {
        unauthorized(res, "Authentication failed: Invalid API key", "Invalid API key");
        return -1;
    }
    if (rc != STORE_OK) {
        api_store_error(res, rc, "authenticate");
        return -1;
    }
    req->auth_user = k.user_id;
    return 0;
}

int api_allow_admin(const http_request *req, http_response *res)
{
    if (req->auth_admin)
        return 0;
    api_forbidden(res);
    return -1;
}

int api_allow_user(const http_request *req, http_response *res, const char *user_id)
{
    if (req->auth_admin || (req->auth_user && user_id && strcmp(req->auth_user, user_id) == 0))
        return 0;
    api_forbidden(res);
    return -1;
}
