/* ember-submit: read the command line, then either replace this process with
 * the Python interpreter running the script (client mode: the script's exit
 * code is ours) or hand the script to a cluster (cluster mode, over the
 * gateway's REST API with libcurl) and follow the driver there. */
#ifndef EMBER_SUBMIT_H
#define EMBER_SUBMIT_H

struct submit_args {
    const char *master;    /* --master, else --conf spark.master, EMBER_MASTER, the
                            * defaults file's spark.master, local[*] */
    const char *name;      /* --name: the application's name unless the script sets one */
    const char *py_files;  /* --py-files a.py,b.zip,pkg/ */
    const char *files;     /* --files a.txt,b.csv (SparkContext.addFile) */
    const char *properties_file;  /* --properties-file, or NULL */
    char *conf;            /* --conf key=value, one a line (new, or NULL) */
    int shell;             /* run an interactive shell with `sc` instead of a script */
    int cluster;           /* --deploy-mode cluster */
    int no_wait;           /* --no-wait: print the driver id and return */
    const char *status_id; /* --status ID */
    const char *kill_id;   /* --kill ID */
    char **script_argv;    /* script path and its arguments */
    int script_argc;
    char *bin_dir;         /* this program's folder (new) */
    char *defaults_file;   /* the defaults file in effect (new, or NULL) */
};

int submit_parse_args(int argc, char **argv, struct submit_args *out);
int submit_exec(const struct submit_args *args);

/* ---- submit_cluster.c: --deploy-mode cluster, --status, --kill ---- */
/* Each returns ember-submit's exit code. */
int submit_cluster_run(const struct submit_args *args);
int submit_cluster_status(const struct submit_args *args);
int submit_cluster_kill(const struct submit_args *args);

/* ---- submit_auth.c: the secret and the CA for the gateway ---- */
struct submit_gateway {
    char *auth_header;     /* "Authorization: Bearer <secret>", or NULL without a secret */
    char *ca_file;         /* trust this CA and speak HTTPS, or NULL for plain HTTP */
    const char *scheme;    /* "https" or "http" */
};
/* Finds them as a driver would; EMBER_EIO (reason printed) for an unreadable secret file. */
int submit_gateway_init(const struct submit_args *args, struct submit_gateway *out);
void submit_gateway_free(struct submit_gateway *g);

/* ---- submit_conf.c: the defaults file ---- */
/* The file in effect: explicit_path (--properties-file, which must exist), else
 * $EMBER_CONF_DIR/ember-defaults.conf, <checkout>/conf/ember-defaults.conf or
 * /opt/ember/conf/ember-defaults.conf when it exists. *path is new or NULL. */
int submit_conf_find(const char *explicit_path, const char *bin_dir, char **path);
/* Splits a line in place ("key value", "key=value"); 0 for blank and # lines. */
int submit_conf_split(char *line, char **key, char **value);
/* The last value of key in the file at path, new, or NULL. */
char *submit_conf_lookup(const char *path, const char *key);

#endif
