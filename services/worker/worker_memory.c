/* One memory budget per worker for the resident memory of its ember-pyexec
 * subprocesses, read from /proc/PID/statm five times a second. Above the soft
 * budget, idle subprocesses that have run tasks are recycled (killed; the pool
 * starts fresh ones). Above the hard budget, the task whose subprocess is the
 * largest fails with a reason that says so, instead of the kernel's OOM killer
 * picking a victim at random (perhaps the worker itself). */
#define _GNU_SOURCE
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "log.h"

#define POLL_MS 200
#define MAX_MEMBERS 256
#define MIB(bytes) ((double)(bytes) / 1048576.0)

struct worker_memory {
    struct worker *w;      /* borrowed */
    uint64_t soft, hard;   /* bytes; 0: off */
    pthread_t thread;
};

/* Resident bytes of pid, or 0 when it is gone. */
static uint64_t resident_bytes(pid_t pid)
{
    char path[64];
    unsigned long long size = 0, resident = 0;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    fp = fopen(path, "re");
    if (!fp)
        return 0;
    if (fscanf(fp, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(fp);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Fails the task of the largest subprocess still running a task's Python code
 * (one past it is about to go idle, and killing it then would fail nothing).
 * 1 when one was failed. */
static int enforce_hard(struct worker_memory *m, const struct pool_member *members,
                        const uint64_t *rss, size_t n, uint64_t total)
{
    size_t victim = n;

    for (size_t i = 0; i < n; i++)
        if (members[i].in_python && (victim == n || rss[i] > rss[victim]))
            victim = i;
    if (victim == n)
        return 0;
    char *together = n > 1 ? ember_xasprintf(" (the worker's %zu Python subprocesses together "
                                             "%.0f MiB)", n, MIB(total))
                           : ember_xstrdup("");
    char *reason = ember_xasprintf(
        "Python worker used %.0f MiB%s, over the worker's memory budget of %.0f MiB "
        "(--python-memory-hard): ember-pyexec pid %d was killed",
        MIB(rss[victim]), together, MIB(m->hard), (int)members[victim].pid);
    free(together);
    /* The task's thread logs the replacement with this reason. */
    if (worker_pool_fail_task(m->w->pool, &members[victim], reason) == 0)
        ember_log_debug("worker=%s task=%llu %s", m->w->id,
                        (unsigned long long)members[victim].task_id, reason);
    free(reason);
    return 1;
}

/* Recycles idle subprocesses, largest first, until the total is under the soft budget. */
static void enforce_soft(struct worker_memory *m, const struct pool_member *members,
                         uint64_t *rss, size_t n, uint64_t total)
{
    while (total > m->soft) {
        size_t victim = n;
        for (size_t i = 0; i < n; i++)
            if (!members[i].busy && members[i].tasks_done > 0 && rss[i] > 0
                && (victim == n || rss[i] > rss[victim]))
                victim = i;
        if (victim == n)
            return;                    /* only busy or fresh ones: nothing to recycle */
        if (worker_pool_recycle(m->w->pool, &members[victim]) == 0)
            ember_log_warn("worker=%s pyexec=%d recycled: it used %.0f MiB while idle, the "
                           "worker's Python subprocesses %.0f MiB, over the soft memory budget "
                           "of %.0f MiB (--python-memory-soft)",
                           m->w->id, (int)members[victim].pid, MIB(rss[victim]), MIB(total),
                           MIB(m->soft));
        total -= rss[victim];
        rss[victim] = 0;
    }
}

static void check(struct worker_memory *m)
{
    struct pool_member members[MAX_MEMBERS];
    uint64_t rss[MAX_MEMBERS], total = 0;
    size_t n = worker_pool_members(m->w->pool, members, MAX_MEMBERS);

    for (size_t i = 0; i < n; i++) {
        rss[i] = resident_bytes(members[i].pid);
        total += rss[i];
    }
    if (m->hard && total > m->hard && enforce_hard(m, members, rss, n, total))
        return;
    if (m->soft)
        enforce_soft(m, members, rss, n, total);
}

static void *monitor_main(void *arg)
{
    struct worker_memory *m = arg;

    while (!ember_daemon_sleep(m->w->daemon, POLL_MS))
        check(m);
    return NULL;
}

/* The option's value; unset means a share of the machine's RAM. */
static int budget_option(struct worker *w, const char *name, unsigned percent_of_ram,
                         uint64_t *out)
{
    if (ember_daemon_opt(w->daemon, name))
        return ember_daemon_opt_size(w->daemon, name, out);
    struct sysinfo si;
    if (sysinfo(&si) != 0) {
        *out = 0;
        return 0;
    }
    *out = (uint64_t)si.totalram * si.mem_unit / 100 * percent_of_ram;
    return 0;
}

int worker_memory_start(struct worker *w, struct worker_memory **out)
{
    uint64_t soft, hard;

    *out = NULL;
    if (budget_option(w, "python-memory-soft", 50, &soft) != 0
        || budget_option(w, "python-memory-hard", 75, &hard) != 0)
        return EMBER_EINVAL;
    if (soft && hard && soft > hard) {
        ember_log_error("--python-memory-soft (%.0f MiB) must not be above --python-memory-hard "
                        "(%.0f MiB)", MIB(soft), MIB(hard));
        return EMBER_EINVAL;
    }
    if (!soft && !hard)
        return 0;
    struct worker_memory *m = ember_xcalloc(1, sizeof(*m));
    m->w = w;
    m->soft = soft;
    m->hard = hard;
    pthread_create(&m->thread, NULL, monitor_main, m);
    ember_log_info("worker=%s Python memory budget: soft %.0f MiB, hard %.0f MiB (0: off)", w->id,
                   MIB(soft), MIB(hard));
    *out = m;
    return 0;
}

void worker_memory_stop(struct worker_memory *m)
{
    if (!m)
        return;
    pthread_join(m->thread, NULL);     /* ember_daemon_sleep returned: the daemon stops */
    free(m);
}

uint64_t worker_memory_soft_share(const struct worker_memory *m, int n)
{
    if (!m || !m->soft || n <= 0)
        return 0;
    return m->soft / (uint64_t)n;
}
