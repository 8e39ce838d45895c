/* How cluster mode reaches the gateway: with the shared secret and over HTTPS
 * as a driver would (python-client/ember/gateway_client.py): the secret from
 * EMBER_AUTH_SECRET, else the file EMBER_AUTH_SECRET_FILE, else the property
 * spark.authenticate.secret (--conf, then the defaults file); HTTPS trusting
 * EMBER_TLS_CA, else spark.ember.tls.ca. Never printed. */
#define _GNU_SOURCE
#include "submit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The last value of key in --conf (one key=value a line), new, or NULL. */
static char *conf_value(const char *conf, const char *key)
{
    char *copy = conf ? ember_xstrdup(conf) : NULL, *save = NULL, *found = NULL;

    for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        char *k, *v;
        if (submit_conf_split(line, &k, &v) && strcmp(k, key) == 0) {
            free(found);
            found = ember_xstrdup(v);
        }
    }
    free(copy);
    return found;
}

static char *property(const struct submit_args *args, const char *key)
{
    char *v = conf_value(args->conf, key);

    if (!v && args->defaults_file)
        v = submit_conf_lookup(args->defaults_file, key);
    return v;
}

static char *secret_from_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char line[4096];

    if (!fp) {
        fprintf(stderr, "ember-submit: cannot read the secret file %s (EMBER_AUTH_SECRET_FILE): "
                "%s\n", path, strerror(errno));
        return NULL;
    }
    if (!fgets(line, sizeof(line), fp))
        line[0] = '\0';
    fclose(fp);
    line[strcspn(line, "\r\n")] = '\0';
    return ember_xstrdup(line);
}

int submit_gateway_init(const struct submit_args *args, struct submit_gateway *out)
{
    const char *env = getenv("EMBER_AUTH_SECRET"), *file = getenv("EMBER_AUTH_SECRET_FILE");
    const char *ca_env = getenv("EMBER_TLS_CA");
    char *secret = NULL;

    memset(out, 0, sizeof(*out));
    if (env && *env) {
        secret = ember_xstrdup(env);
    } else if (file && *file) {
        secret = secret_from_file(file);
        if (!secret)
            return EMBER_EIO;
    } else {
        secret = property(args, "spark.authenticate.secret");
    }
    if (secret && *secret)
        out->auth_header = ember_xasprintf("Authorization: Bearer %s", secret);
    free(secret);
    out->ca_file = ca_env && *ca_env ? ember_xstrdup(ca_env) : property(args, "spark.ember.tls.ca");
    out->scheme = out->ca_file ? "https" : "http";
    return 0;
}

void submit_gateway_free(struct submit_gateway *g)
{
    free(g->auth_header);
    free(g->ca_file);
    memset(g, 0, sizeof(*g));
}
