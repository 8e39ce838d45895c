/* ember-master: cluster membership, applications, jobs and the scheduler. */
#include "daemon.h"
#include "master.h"

int main(int argc, char **argv)
{
    struct ember_daemon d;
    struct master *m = NULL;
    int rc;

    if (ember_daemon_init(&d, "ember-master", "Schedules Ember jobs on workers.", master_options,
                          argc, argv) != 0)
        return 2;                      /* usage error, already printed */
    rc = master_create(&d, &m);
    if (rc == 0)
        rc = ember_daemon_run(&d);     /* returns after SIGINT/SIGTERM */
    master_destroy(m);                 /* NULL-safe */
    ember_daemon_fini(&d);
    return rc == 0 ? 0 : 1;
}
