/* ember-gateway: the REST API under /api/v1 and the web UI of an Ember
 * cluster; a gRPC client of ember-master and of the block managers. */
#include <string.h>

#include "daemon.h"
#include "gw.h"

int main(int argc, char **argv)
{
    struct ember_daemon d;
    struct gw *g = NULL;
    int rc;

    if (argc == 2 && strcmp(argv[1], "--list-routes") == 0) {
        gw_http_print_routes(stdout);  /* what tests enumerate: no route goes unchecked */
        return 0;
    }
    if (ember_daemon_init(&d, "ember-gateway",
                          "Serves the Ember REST API and web UI over HTTP (HTTPS with "
                          "--tls-cert).\n'ember-gateway --list-routes' prints the routes and "
                          "which need the shared secret.",
                          gw_options, argc, argv) != 0)
        return 2;                      /* usage error, already printed */
    rc = gw_create(&d, &g);
    if (rc == 0)
        rc = ember_daemon_run(&d);     /* returns after SIGINT/SIGTERM */
    gw_destroy(g);                     /* NULL-safe */
    ember_daemon_fini(&d);
    return rc == 0 ? 0 : 1;
}
