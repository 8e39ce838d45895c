/* ember-blockd: keeps blocks in memory, spills to disk, serves them to peers. */
#include "blockd.h"
#include "daemon.h"

int main(int argc, char **argv)
{
    struct ember_daemon d;
    struct blockd *b = NULL;
    int rc;

    if (ember_daemon_init(&d, "ember-blockd",
                          "Block manager: stores shuffle outputs, results and cached partitions in "
                          "memory (spilling to disk past --memory) and serves them over gRPC.",
                          blockd_options, argc, argv)
        != 0)
        return 2;                      /* usage error, already printed */
    rc = blockd_create(&d, &b);
    if (rc == 0)
        rc = ember_daemon_run(&d);     /* returns after SIGINT/SIGTERM */
    blockd_destroy(b);                 /* NULL-safe */
    ember_daemon_fini(&d);
    return rc == 0 ? 0 : 1;
}
