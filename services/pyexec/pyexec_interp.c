/* Process set-up and the embedded interpreter of ember-pyexec. */
#include "pyexec.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "error.h"

int pyexec_guard_parent(void)
{
    const char *pp = getenv("EMBER_PARENT_PID");

    /* Fires when the worker's launcher thread (our "parent") exits. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (pp && getppid() != (pid_t)atoi(pp))
        return EMBER_EDEAD;
    return 0;
}

int pyexec_claim_stdout(int *out_fd)
{
    int fd = fcntl(1, F_DUPFD_CLOEXEC, 3);

    if (fd < 0 || dup2(2, 1) < 0) {
        perror("ember-pyexec: cannot set up stdout");
        return EMBER_EIO;
    }
    *out_fd = fd;
    return 0;
}

/* The `ember` package: EMBER_PY_PATH (colon separated), else the checkout's
 * python-client/ next to build/bin/, else an installed /opt/ember/python;
 * with its alias/ folder too, since a closure may use pyspark.* modules. */
static char *default_python_path(const char *argv0)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *folder = NULL, *paths;

    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            if (asprintf(&folder, "%s/../../python-client", exe) < 0)
                folder = NULL;
            else if (access(folder, R_OK) != 0) {
                free(folder);
                folder = NULL;
            }
        }
    }
    if (!folder)
        folder = strdup("/opt/ember/python");
    if (asprintf(&paths, "%s:%s/alias", folder, folder) < 0)
        paths = NULL;
    free(folder);
    return paths;
}

/* Puts the `ember` package's folders first on sys.path. Done after start-up
 * rather than through module_search_paths, which would replace the stdlib. */
static int prepend_sys_path(const char *paths)
{
    PyObject *sys_path = PySys_GetObject("path");   /* borrowed */
    char *copy = strdup(paths), *save = NULL;
    Py_ssize_t at = 0;
    int rc = 0;

    for (char *p = strtok_r(copy, ":", &save); p && rc == 0; p = strtok_r(NULL, ":", &save)) {
        PyObject *item = PyUnicode_DecodeFSDefault(p);
        if (!item || !sys_path || PyList_Insert(sys_path, at++, item) != 0)
            rc = EMBER_EINVAL;
        Py_XDECREF(item);
    }
    free(copy);
    return rc;
}

int pyexec_interp_start(const char *argv0)
{
    PyConfig config;
    PyStatus st;
    const char *env_path = getenv("EMBER_PY_PATH");
    char *path = env_path && *env_path ? strdup(env_path) : default_python_path(argv0);
    int rc = EMBER_EINVAL;

    if (pyexec_arenas_install() != 0 || pyexec_heap_install() != 0)
        goto out_path;
    if (PyImport_AppendInittab("_ember_io", pyexec_io_init) != 0
        || PyImport_AppendInittab("_ember_fast", pyexec_fast_init) != 0)
        goto out_path;
    /* Isolated: a stray PYTHONPATH must not load another Python's modules.
     * Hash seed 0: hash(key) % n must agree in every process of the cluster. */
    PyConfig_InitIsolatedConfig(&config);
    config.use_hash_seed = 1;
    config.hash_seed = 0;
    config.install_signal_handlers = 0;
    /* Name Debian's interpreter: found through PATH, "python3" may be another
     * installation whose prefix has no matching stdlib. */
    st = PyConfig_SetBytesString(&config, &config.program_name, EMBER_PYTHON_EXE);
    if (PyStatus_Exception(st))
        goto out;
    st = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(st)) {
        PyConfig_Clear(&config);
        free(path);
        Py_ExitStatusException(st);
    }
    rc = prepend_sys_path(path);
out:
    PyConfig_Clear(&config);
out_path:
    free(path);
    if (rc != 0)
        fprintf(stderr, "ember-pyexec: cannot configure the interpreter\n");
    return rc;
}

int pyexec_run(int in_fd, int out_fd)
{
    PyObject *mod, *result;
    int rc = 2;

    pyexec_io_set_fds(in_fd, out_fd);
    mod = PyImport_ImportModule("ember.worker_runtime");
    if (!mod) {
        PyErr_Print();
        return 2;
    }
    result = PyObject_CallMethod(mod, "main", NULL);
    if (result) {
        rc = (int)PyLong_AsLong(result);
        Py_DECREF(result);
    } else {
        PyErr_Print();
    }
    Py_DECREF(mod);
    return rc;
}

int pyexec_interp_stop(int rc)
{
    if (Py_FinalizeEx() < 0 && rc == 0)
        rc = 2;
    return rc;
}
