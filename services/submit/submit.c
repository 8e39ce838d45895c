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
            "       ember-shell [options]\n"
            "Runs a PySpark-style driver script (or an interactive shell with `sc`) on Ember\n"
            "with %s.\n\n"
            "  --master URL        ember://HOST:PORT (a cluster's gateway), local[N] or local[*]\n"
            "                      (environment: EMBER_MASTER; default local[*])\n"
            "  --name NAME         application name, unless the script sets one\n"
            "  --conf KEY=VALUE    a SparkConf setting the script does not set (repeatable)\n"
            "  --py-files LIST     comma-separated .py, .zip or package folders to ship to tasks\n"
            "  --deploy-mode MODE  client (the driver runs here; the only mode so far)\n"
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

int submit_parse_args(int argc, char **argv, struct submit_args *out)
{
    const char *slash = strrchr(argv[0], '/');
    int i = 1;

    memset(out, 0, sizeof(*out));
    out->shell = strcmp(slash ? slash + 1 : argv[0], "ember-shell") == 0;
    out->master = getenv("EMBER_MASTER");
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *value = NULL;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("ember-submit %s\n", EMBER_VERSION);
            exit(0);
        }
        if (option_value(argc, argv, &i, "--master", &value))
            out->master = value;
        else if (option_value(argc, argv, &i, "--name", &value))
            out->name = value;
        else if (option_value(argc, argv, &i, "--py-files", &value))
            out->py_files = value;
        else if (option_value(argc, argv, &i, "--conf", &value))
            add_conf(out, value);
        else if (option_value(argc, argv, &i, "--deploy-mode", &value)) {
            if (strcmp(value, "client") != 0) {
                fprintf(stderr, "ember-submit: --deploy-mode %s is not supported yet; use "
                        "client\n", value);
                return EMBER_EINVAL;
            }
        } else {
            fprintf(stderr, "ember-submit: unknown option '%s' (or it needs a value)\n",
                    argv[i]);
            usage(stderr);
            return EMBER_EINVAL;
        }
    }
    if (out->shell) {
        out->script_argv = argv + i;
        out->script_argc = argc - i;
        if (!out->master || !*out->master)
            out->master = "local[*]";
        return 0;
    }
    if (i == argc) {
        fprintf(stderr, "ember-submit: no script given\n");
        usage(stderr);
        return EMBER_EINVAL;
    }
    if (!out->master || !*out->master)
        out->master = "local[*]";
    out->script_argv = argv + i;
    out->script_argc = argc - i;
    return 0;
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
    char *bin_dir = own_dir();
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
    free(bin_dir);
    return 127;
}
