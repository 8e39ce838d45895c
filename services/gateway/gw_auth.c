/* Access control of the gateway. With a shared secret (security.h) every
 * route not marked open wants either "Authorization: Bearer <secret>" or the
 * session cookie that POST /login hands out for the right secret. The cookie
 * holds a random token made at start, never the secret: a restarted gateway
 * asks the browser to log in again. */
#define _GNU_SOURCE
#include "gw.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "security.h"

#define SESSION_COOKIE "ember_session"
#define SESSION_BYTES 32

int gw_auth_init(struct gw *g)
{
    unsigned char raw[SESSION_BYTES];
    static const char hex[] = "0123456789abcdef";

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        ember_log_error_errno("cannot make a session token");
        return EMBER_EIO;
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        g->session[2 * i] = hex[raw[i] >> 4];
        g->session[2 * i + 1] = hex[raw[i] & 15];
    }
    g->session[2 * SESSION_BYTES] = '\0';
    return 0;
}

int gw_auth_required(void)
{
    return ember_security_get()->secret != NULL;
}

int gw_auth_request_ok(const struct gw_request *rq)
{
    const char *header, *cookie;

    if (!gw_auth_required())
        return 1;
    header = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (header)
        return ember_security_bearer_ok(header, strlen(header));
    cookie = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, SESSION_COOKIE);
    return cookie && ember_security_equal(cookie, strlen(cookie), rq->gw->session,
                                          strlen(rq->gw->session));
}

enum MHD_Result gw_auth_reply_unauthorized(struct gw_request *rq)
{
    const char *headers[] = {MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"ember\"", NULL};

    return gw_reply_error_headers(
        rq, MHD_HTTP_UNAUTHORIZED, headers,
        "%s %s lacks the cluster's shared secret or has a wrong one: send 'Authorization: "
        "Bearer <secret>' (drivers do with EMBER_AUTH_SECRET or EMBER_AUTH_SECRET_FILE set) or "
        "log in to the web UI at /", rq->method, rq->path);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The value of `name` in an application/x-www-form-urlencoded body, decoded
 * into a new string; NULL when absent or malformed. */
static char *form_value(const char *body, const char *name)
{
    size_t name_len = strlen(name);

    for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        size_t n = strcspn(p, "&");
        if (n <= name_len || strncmp(p, name, name_len) != 0 || p[name_len] != '=')
            continue;
        char *out = ember_xmalloc(n), *o = out;
        for (const char *q = p + name_len + 1; q < p + n; q++) {
            if (*q == '+') {
                *o++ = ' ';
            } else if (*q != '%') {
                *o++ = *q;
            } else if (q + 2 < p + n && hex_value(q[1]) >= 0 && hex_value(q[2]) >= 0) {
                *o++ = (char)(hex_value(q[1]) * 16 + hex_value(q[2]));
                q += 2;
            } else {
                free(out);
                return NULL;
            }
        }
        *o = '\0';
        return out;
    }
    return NULL;
}

/* POST /login, body "secret=..." (the UI's form): 303 to / with the session cookie. */
enum MHD_Result gw_auth_login(struct gw_request *rq)
{
    const struct ember_security *sec = ember_security_get();
    char *secret, *cookie;
    int ok;
    enum MHD_Result ret;

    if (!gw_auth_required())
        return gw_reply_error(rq, MHD_HTTP_NOT_FOUND,
                              "this gateway has no shared secret: there is nothing to log in to");
    secret = form_value(rq->body.data ? (const char *)rq->body.data : "", "secret");
    ok = secret && ember_security_equal(secret, strlen(secret), sec->secret, strlen(sec->secret));
    free(secret);
    if (!ok) {
        ember_log_warn("refused a login to the web UI: wrong shared secret");
        return gw_reply_error(rq, MHD_HTTP_UNAUTHORIZED,
                              "wrong secret: give the cluster's shared secret (EMBER_AUTH_SECRET)");
    }
    cookie = ember_xasprintf("%s=%s; Path=/; HttpOnly; SameSite=Strict%s", SESSION_COOKIE,
                             rq->gw->session, sec->tls_cert_pem ? "; Secure" : "");
    const char *headers[] = {MHD_HTTP_HEADER_SET_COOKIE, cookie, MHD_HTTP_HEADER_LOCATION, "/",
                             NULL};
    ret = gw_reply_json_headers(rq, MHD_HTTP_SEE_OTHER, json_pack("{s:s}", "status", "logged in"),
                                headers);
    free(cookie);
    return ret;
}

/* POST /logout: forgets the browser's cookie (the token stays valid elsewhere). */
enum MHD_Result gw_auth_logout(struct gw_request *rq)
{
    const char *headers[] = {MHD_HTTP_HEADER_SET_COOKIE,
                             SESSION_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
                             MHD_HTTP_HEADER_LOCATION, "/", NULL};

    return gw_reply_json_headers(rq, MHD_HTTP_SEE_OTHER,
                                 json_pack("{s:s}", "status", "logged out"), headers);
}
