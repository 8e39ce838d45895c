/* ember-worker: runs tasks from the master in a pool of ember-pyexec
 * subprocesses and keeps their outputs in its paired block manager. */
#include "daemon.h"
#include "worker.h"

int main(int argc, char **argv)
{
    struct ember_daemon d;
    struct worker *w = NULL;
    int rc;

    if (ember_daemon_init(&d, "ember-worker", "Runs Ember tasks in Python subprocesses.",
                          worker_options, argc, argv) != 0)
        return 2;                      /* usage error, already printed */
    rc = worker_create(&d, &w);
    if (rc == 0)
        rc = ember_daemon_run(&d);     /* returns after SIGINT/SIGTERM */
    worker_destroy(w);                 /* NULL-safe */
    ember_daemon_fini(&d);
    return rc == 0 ? 0 : 1;
}
