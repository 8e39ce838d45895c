/* The defaults file (conf/ember-defaults.conf): where it is and what it says.
 * The Python client reads the same file with the same rules
 * (ember/conf.py); ember-submit needs it for spark.master and, in cluster
 * mode, uploads it with the script. */
#define _GNU_SOURCE
#include "submit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define DEFAULTS_NAME "ember-defaults.conf"

int submit_conf_find(const char *explicit_path, const char *bin_dir, char **path)
{
    const char *conf_dir = getenv("EMBER_CONF_DIR");
    char *candidates[3] = {NULL, NULL, NULL};
    int n = 0;

    *path = NULL;
    if (explicit_path) {
        if (access(explicit_path, R_OK) != 0) {
            fprintf(stderr, "ember-submit: --properties-file %s cannot be read\n", explicit_path);
            return EMBER_ENOENT;
        }
        *path = ember_xstrdup(explicit_path);
        return 0;
    }
    if (conf_dir && *conf_dir)
        candidates[n++] = ember_xasprintf("%s/%s", conf_dir, DEFAULTS_NAME);
    candidates[n++] = ember_xasprintf("%s/../../conf/%s", bin_dir, DEFAULTS_NAME);
    candidates[n++] = ember_xstrdup("/opt/ember/conf/" DEFAULTS_NAME);
    for (int i = 0; i < n; i++) {
        if (!*path && access(candidates[i], R_OK) == 0)
            *path = realpath(candidates[i], NULL);
        free(candidates[i]);
    }
    return 0;
}

/* Splits one line into key and value in place: "key value", "key=value" or
 * "key = value"; 0 for a blank or # comment line. */
int submit_conf_split(char *line, char **key, char **value)
{
    char *end;

    while (isspace((unsigned char)*line))
        line++;
    end = line + strlen(line);
    while (end > line && isspace((unsigned char)end[-1]))
        *--end = '\0';
    if (!*line || *line == '#')
        return 0;
    *key = line;
    size_t key_len = strcspn(line, " \t=");
    char separator = line[key_len];
    line[key_len] = '\0';
    line += key_len + (separator ? 1 : 0);
    line += strspn(line, " \t");
    if (separator != '=' && *line == '=') {   /* "key = value" */
        line++;
        line += strspn(line, " \t");
    }
    *value = line;
    return 1;
}

char *submit_conf_lookup(const char *path, const char *key)
{
    FILE *fp = path ? fopen(path, "r") : NULL;
    char *line = NULL, *found = NULL, *k, *v;
    size_t cap = 0;

    if (!fp)
        return NULL;
    while (getline(&line, &cap, fp) >= 0)
        if (submit_conf_split(line, &k, &v) && strcmp(k, key) == 0) {
            free(found);
            found = ember_xstrdup(v);     /* the last one wins, as in a SparkConf */
        }
    free(line);
    fclose(fp);
    return found;
}
