/* ember-submit: runs a driver script with Debian's python3, the `ember`
 * package (and the `pyspark` alias) importable and EMBER_MASTER set; or, with
 * --deploy-mode cluster, has a cluster run it on a worker. */
#include "submit.h"

int main(int argc, char **argv)
{
    struct submit_args args;
    int rc;

    rc = submit_parse_args(argc, argv, &args);
    if (rc != 0)
        return 2;                      /* usage error, already printed */
    if (args.status_id)
        return submit_cluster_status(&args);
    if (args.kill_id)
        return submit_cluster_kill(&args);
    if (args.cluster)
        return submit_cluster_run(&args);
    return submit_exec(&args);         /* returns only when exec failed */
}
