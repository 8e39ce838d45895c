#define _GNU_SOURCE
#include "submit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: ember-submit [--master URL] script.py [args...]\n"
            "Runs a PySpark-style driver script on Ember with %s.\n\n"
            "  --master URL   ember://HOST:PORT (a cluster's gateway), local[N] or local[*]\n"
            "                 (environment: EMBER_MASTER; default local[*])\n"
            "  -h, --help     show this help\n\n"
            "Inside the script, `from pyspark import SparkContext` resolves to Ember.\n"
            "EMBER_BIN_DIR and EMBER_PY_PATH override where the programs and the\n"
            "Python package are found.\n",
            EMBER_PYTHON_EXE);
}

int submit_parse_args(int argc, char **argv, struct submit_args *out)
{
    int i = 1;

    memset(out, 0, sizeof(*out));
    out->master = getenv("EMBER_MASTER");
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--master") == 0 && i + 1 < argc) {
            out->master = argv[++i];
        } else if (strncmp(argv[i], "--master=", 9) == 0) {
            out->master = argv[i] + 9;
        } else {
            fprintf(stderr, "ember-submit: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return EMBER_EINVAL;
        }
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
    argv[0] = (char *)EMBER_PYTHON_EXE;
    for (int i = 0; i < args->script_argc; i++)
        argv[i + 1] = args->script_argv[i];
    execv(EMBER_PYTHON_EXE, argv);
    perror("ember-submit: cannot run " EMBER_PYTHON_EXE);
    free(argv);
    free(pythonpath);
    free(pkg);
    free(bin_dir);
    return 127;
}
