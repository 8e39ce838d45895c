/* Every Worker gRPC method against a real ember-worker: one core with a real
 * ember-pyexec (from the same build), a real ember-master in the same process
 * (which answers the task reports), its block manager at a closed port, HTTP
 * inputs through a closed proxy (no fuzzed URL reaches a network). A launched
 * task runs to its end before the next input. Cluster-mode drivers a fuzzed
 * LaunchDriver starts (python3 on the fuzzed script, which is what that method
 * is for) write under a private work folder, removed at exit. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_daemon.h"
#include "master.h"
#include "worker.h"
#include "worker.pb-c.h"

static struct ember_daemon daemon_, master_daemon_;
static struct worker *worker_;
static struct master *master_;
static char work_dir_[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void stop(void)
{
    fuzz_daemon_stop(&daemon_);
    worker_destroy(worker_);
    ember_daemon_fini(&daemon_);
    fuzz_daemon_stop(&master_daemon_);
    master_destroy(master_);
    ember_daemon_fini(&master_daemon_);
    nftw(work_dir_, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* static or never freed: the daemons borrow their option values for life */
    static char master_addr[32];
    char *master_ready = fuzz_ready_file("master");
    const char *master_args[] = {"--listen", "127.0.0.1:0", "--ready-file", master_ready, NULL};
    const char *args[] = {"--listen", "127.0.0.1:0", "--master", master_addr,
                          "--blockd", FUZZ_CLOSED_PEER, "--cores", "1",
                          "--work-dir", work_dir_, NULL};

    snprintf(work_dir_, sizeof(work_dir_), "/tmp/ember-fuzz-worker-%d", (int)getpid());
    setenv("http_proxy", "http://" FUZZ_CLOSED_PEER, 1);
    setenv("https_proxy", "http://" FUZZ_CLOSED_PEER, 1);
    setenv("HTTPS_PROXY", "http://" FUZZ_CLOSED_PEER, 1);
    setenv("ALL_PROXY", "http://" FUZZ_CLOSED_PEER, 1);
    /* gRPC honours these variables too: loopback peers are reached directly. */
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    fuzz_daemon_init(&master_daemon_, "ember-master", master_options, master_args);
    if (master_create(&master_daemon_, &master_) != 0)
        abort();
    snprintf(master_addr, sizeof(master_addr), "127.0.0.1:%d", fuzz_ready_port(master_ready));
    fuzz_daemon_init(&daemon_, "ember-worker", worker_options, args);
    if (worker_create(&daemon_, &worker_) != 0)
        abort();
    atexit(stop);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_rpc_input(worker_->server, &ember__worker__descriptor, data, size, NULL, NULL);
    worker_wait_idle(worker_);
    return 0;
}
