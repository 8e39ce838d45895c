/* ember-pyexec: runs user functions in an embedded CPython for one worker,
 * task after task, over length-prefixed frames on stdin/stdout. */
#include "pyexec.h"

int main(int argc, char **argv)
{
    int out_fd;
    int rc;

    rc = pyexec_guard_parent();
    if (rc != 0)
        return 3;                      /* the worker is already gone */
    rc = pyexec_claim_stdout(&out_fd);
    if (rc != 0)
        return 2;
    rc = pyexec_interp_start(argc > 0 ? argv[0] : "ember-pyexec");
    if (rc != 0)
        return 2;
    rc = pyexec_run(0, out_fd);        /* returns when the worker closes stdin */
    return pyexec_interp_stop(rc);
}
