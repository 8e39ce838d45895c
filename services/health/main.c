/* ember-health: exits 0 when an Ember daemon serves, 1 when it does not
 * (docker-compose health checks of the gRPC daemons). */
#include "health.h"

int main(int argc, char **argv)
{
    struct health_args args;

    if (health_parse_args(argc, argv, &args) != 0)
        return 2;                      /* usage error, already printed */
    return health_check(&args) == 0 ? 0 : 1;
}
