/* ember-submit: runs a driver script with Debian's python3, the `ember`
 * package (and the `pyspark` alias) importable and EMBER_MASTER set. */
#include "submit.h"

int main(int argc, char **argv)
{
    struct submit_args args;
    int rc;

    rc = submit_parse_args(argc, argv, &args);
    if (rc != 0)
        return 2;                      /* usage error, already printed */
    return submit_exec(&args);         /* returns only when exec failed */
}
