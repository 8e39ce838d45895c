#define _GNU_SOURCE
#include "submit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define EMBER_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: ember-submit [options] script.py [args...]\n"
            "       ember-submit --master ember://HOST:PORT --status ID | --kill ID\n"
            "       ember-shell [options]\n"
            "Runs a PySpark-style driver script (or an interactive shell with `sc`) on Ember\n"
            "with %s.\n\n"
            "  --master URL        ember://HOST:PORT (a cluster's gateway), local[N] or local[*]\n"
            "                      (else --conf spark.master, EMBER_MASTER, the defaults\n"
            "                      file's spark.master; default local[*])\n"
            "  --name NAME         application name, unless the script sets one\n"
            "  --conf KEY=VALUE    a SparkConf setting the script does not set (repeatable)\n"
            "  --properties-file F the defaults file (else $EMBER_CONF_DIR/ember-defaults.conf\n"
            "                      or conf/ember-defaults.conf of the installation)\n"
            "  --py-files LIST     comma-separated .py, .zip or package folders to ship to tasks\n"
            "  --files LIST        comma-separated data files (SparkFiles.get(name) in tasks)\n"
            "  --deploy-mode MODE  client (the driver runs here, default) or cluster (a worker\n"
            "                      runs it; needs --master ember://...)\n"
            "  --no-wait           cluster mode: print the driver id and return at once\n"
            "                      (default: follow its output, exit with its exit code)\n"
            "  --status ID         print a cluster-mode driver's state and exit code\n"
            "  --kill ID           stop a cluster-mode driver (SIGTERM, then SIGKILL)\n"
            "  --version           print the version\n"
            "  -h, --help          show this help\n\n"
            "Inside the script, `from pyspark import SparkContext` resolves to Ember.\n"
            "EMBER_BIN_DIR and EMBER_PY_PATH override where the programs and the\n"
            "Python package are found.\n",
            EMBER_PYTHON_EXE);
}

/* "--flag value" or "--flag=value"; advances *i past what it used. */
static int option_value(int argc, char **argv, int *i, const char *flag, const char **value)
{
    size_t n = strlen(flag);

    if (strcmp(argv[*i], flag) == 0 && *i + 1 < argc) {
        *value = argv[++*i];
        return 1;
    }
    if (strncmp(argv[*i], flag, n) == 0 && argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    return 0;
}

static void add_conf(struct submit_args *out, const char *pair)
{
    char *joined = ember_xasprintf("%s%s%s", out->conf ? out->conf : "", out->conf ? "\n" : "",
                                   pair);
    free(out->conf);
    out->conf = joined;
}

/* The folder of this program, where the daemons live too. */
static char *own_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (n <= 0)
        return ember_xstrdup(".");
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    return ember_xstrdup(exe);
}

static int parse_deploy_mode(const char *value, struct submit_args *out)
{
    if (strcmp(value, "client") == 0 || strcmp(value, "cluster") == 0) {
        out->cluster = strcmp(value, "cluster") == 0;
        return 0;
    }
    fprintf(stderr, "ember-submit: --deploy-mode must be client or cluster, not '%s'\n", value);
    return EMBER_EINVAL;
}

/* One option at argv[*i]; 1 when it was one, 0 when unknown, <0 on a bad value. */
static int parse_option(int argc, char **argv, int *i, struct submit_args *out)
{
    const char *value = NULL;

    if (strcmp(argv[*i], "--no-wait") == 0)
        out->no_wait = 1;
    else if (option_value(argc, argv, i, "--master", &value))
        out->master = value;
    else if (option_value(argc, argv, i, "--name", &value))
        out->name = value;
    else if (option_value(argc, argv, i, "--py-files", &value))
        out->py_files = value;
    else if (option_value(argc, argv, i, "--files", &value))
        out->files = value;
    else if (option_value(argc, argv, i, "--properties-file", &value))
        out->properties_file = value;
    else if (option_value(argc, argv, i, "--status", &value))
        out->status_id = value;
    else if (option_value(argc, argv, i, "--kill", &value))
        out->kill_id = value;
    else if (option_value(argc, argv, i, "--conf", &value)) {
        if (!strchr(value, '=') || value[0] == '=') {
            fprintf(stderr, "ember-submit: --conf wants KEY=VALUE, not '%s'\n", value);
            return EMBER_EINVAL;
        }
        add_conf(out, value);
    } else if (option_value(argc, argv, i, "--deploy-mode", &value))
        return parse_deploy_mode(value, out) == 0 ? 1 : EMBER_EINVAL;
    else
        return 0;
    return 1;
}

/* The value of key among the --conf lines, new or NULL. */
static char *conf_value(const char *conf, const char *key)
{
    size_t n = strlen(key);
    char *found = NULL;

    for (const char *line = conf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
        if (strncmp(line, key, n) == 0 && line[n] == '=') {
            free(found);
            found = ember_xasprintf("%.*s", (int)strcspn(line + n + 1, "\n"), line + n + 1);
        }
    }
    return found;
}

/* --master, else --conf spark.master, EMBER_MASTER, the defaults file, local[*]. */
static void resolve_master(struct submit_args *out)
{
    static char *kept;                 /* lives as long as the process */
    const char *env = getenv("EMBER_MASTER");

    if (out->master && *out->master) {
        char *pair = ember_xasprintf("spark.master=%s", out->master);
        add_conf(out, pair);           /* --master is --conf spark.master, as in Spark */
        free(pair);
        return;
    }
    kept = conf_value(out->conf, "spark.master");
    if (!kept && env && *env)
        kept = ember_xstrdup(env);
    if (!kept)
        kept = submit_conf_lookup(out->defaults_file, "spark.master");
    out->master = kept && *kept ? kept : "local[*]";
}

static int check_mode(const struct submit_args *out)
{
    if ((out->cluster || out->status_id || out->kill_id)
        && strncmp(out->master, "ember://", 8) != 0) {
        fprintf(stderr, "ember-submit: %s needs --master ember://HOST:PORT (a cluster's "
                "gateway), not %s\n", out->cluster ? "--deploy-mode cluster" : "--status/--kill",
                out->master);
        return EMBER_EINVAL;
    }
    if (out->cluster && out->shell) {
        fprintf(stderr, "ember-shell runs here: --deploy-mode cluster is for scripts\n");
        return EMBER_EINVAL;
    }
    return 0;
}

int submit_parse_args(int argc, char **argv, struct submit_args *out)
{
    const char *slash = strrchr(argv[0], '/');
    int i = 1, rc;

    memset(out, 0, sizeof(*out));
    out->shell = strcmp(slash ? slash + 1 : argv[0], "ember-shell") == 0;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("ember-submit %s\n", EMBER_VERSION);
            exit(0);
        }
        rc = parse_option(argc, argv, &i, out);
        if (rc < 0)
            return EMBER_EINVAL;
        if (rc == 0) {
            fprintf(stderr, "ember-submit: unknown option '%s' (or it needs a value)\n",
                    argv[i]);
            usage(stderr);
            return EMBER_EINVAL;
        }
    }
    out->bin_dir = own_dir();
    if (submit_conf_find(out->properties_file, out->bin_dir, &out->defaults_file) != 0)
        return EMBER_EINVAL;
    resolve_master(out);
    out->script_argv = argv + i;
    out->script_argc = argc - i;
    if (check_mode(out) != 0)
        return EMBER_EINVAL;
    if (!out->shell && !out->status_id && !out->kill_id && i == argc) {
        fprintf(stderr, "ember-submit: no script given\n");
        usage(stderr);
        return EMBER_EINVAL;
    }
    return 0;
}

static char *python_path(const char *bin_dir)
{
    const char *env = getenv("EMBER_PY_PATH");
    char *checkout = ember_xasprintf("%s/../../python-client", bin_dir);
    char *base, *real;

    if (env && *env)
        base = ember_xstrdup(env);
    else if ((real = realpath(checkout, NULL)) != NULL)
        base = real;
    else
        base = ember_xstrdup("/opt/ember/python");
    free(checkout);
    return base;
}

int submit_exec(const struct submit_args *args)
{
    const char *bin_dir = args->bin_dir;
    char *pkg = python_path(bin_dir);
    const char *old = getenv("PYTHONPATH");
    char *pythonpath = ember_xasprintf("%s:%s/alias%s%s", pkg, pkg, old && *old ? ":" : "",
                                       old ? old : "");
    char **argv = ember_xcalloc((size_t)args->script_argc + 2, sizeof(char *));

    setenv("EMBER_MASTER", args->master, 1);
    setenv("PYTHONPATH", pythonpath, 1);
    if (!getenv("EMBER_BIN_DIR"))
        setenv("EMBER_BIN_DIR", bin_dir, 1);
    if (args->name)
        setenv("EMBER_APP_NAME", args->name, 1);
    if (args->conf)
        setenv("EMBER_CONF", args->conf, 1);
    if (args->py_files)
        setenv("EMBER_PY_FILES", args->py_files, 1);
    if (args->files)
        setenv("EMBER_FILES", args->files, 1);
    if (args->properties_file)
        setenv("EMBER_PROPERTIES_FILE", args->defaults_file, 1);
    argv[0] = (char *)EMBER_PYTHON_EXE;
    if (args->shell) {
        /* Lines typed at the prompt are "<stdin>" lines: the UI shows <stdin>:N. */
        argv = ember_xrealloc(argv, ((size_t)args->script_argc + 5) * sizeof(char *));
        argv[1] = "-i";
        argv[2] = "-c";
        argv[3] = "from ember.shell import start; sc = start()";
        for (int i = 0; i < args->script_argc; i++)
            argv[i + 4] = args->script_argv[i];
        argv[args->script_argc + 4] = NULL;
    } else {
        for (int i = 0; i < args->script_argc; i++)
            argv[i + 1] = args->script_argv[i];
    }
    execv(EMBER_PYTHON_EXE, argv);
    perror("ember-submit: cannot run " EMBER_PYTHON_EXE);
    free(argv);
    free(pythonpath);
    free(pkg);
    return 127;
}
