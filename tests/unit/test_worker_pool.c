/* The pyexec pool's kill rules, with /bin/cat standing in for ember-pyexec (it
 * lives until killed): a cancel or the memory budget may only kill a process
 * while its task runs Python code, and a process killed for one task never
 * serves the next one (with that task's kill reason). */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "worker.h"

static int alive(pid_t pid)
{
    return kill(pid, 0) == 0;
}

/* The pool's only member, as the memory monitor sees it. */
static struct pool_member only_member(struct worker_pool *p)
{
    struct pool_member m = {0};
    CHECK(worker_pool_members(p, &m, 1) == 1, "one member listed");
    return m;
}

static void test_no_kill_after_python_is_done(struct worker_pool *p)
{
    struct pyexec_slot *s = worker_pool_acquire(p, 1, NULL, NULL);
    pid_t pid = s->pid;
    struct pool_member m = only_member(p);

    CHECK(m.busy && m.in_python, "busy %d in_python %d", m.busy, m.in_python);
    worker_pool_python_done(p, s);
    m = only_member(p);
    CHECK(m.busy && !m.in_python, "busy %d in_python %d", m.busy, m.in_python);
    CHECK(worker_pool_kill_task(p, 1) == EMBER_ENOENT, "a cancel after Python ended kills");
    CHECK(worker_pool_fail_task(p, &m, "too big") == EMBER_ENOENT,
          "the memory budget kills a task past its Python work");
    CHECK(alive(pid), "pid %d was killed", (int)pid);
    worker_pool_release(p, s);
    s = worker_pool_acquire(p, 2, NULL, NULL);
    CHECK(s->pid == pid, "an untouched process is kept: %d then %d", (int)pid, (int)s->pid);
    worker_pool_python_done(p, s);
    worker_pool_release(p, s);
}

/* The kill lands while the task reads its last frames; the task ends well. */
static void test_a_process_killed_for_a_finished_task_is_replaced(struct worker_pool *p,
                                                                 int by_budget)
{
    struct pyexec_slot *s = worker_pool_acquire(p, 3, NULL, NULL);
    pid_t pid = s->pid;
    struct pool_member m = only_member(p);

    if (by_budget)
        CHECK(worker_pool_fail_task(p, &m, "over the hard budget") == 0, "fail_task refused");
    else
        CHECK(worker_pool_kill_task(p, 3) == 0, "kill_task refused");
    worker_pool_python_done(p, s);
    worker_pool_release(p, s);
    CHECK(!alive(pid), "pid %d still runs (or is an unreaped zombie)", (int)pid);
    s = worker_pool_acquire(p, 4, NULL, NULL);
    CHECK(s->pid != pid && alive(s->pid), "the next task got pid %d (old %d)", (int)s->pid,
          (int)pid);
    m = only_member(p);          /* listed again: no kill reason left over */
    CHECK(m.pid == s->pid && m.task_id == 4, "member pid %d task %llu", (int)m.pid,
          (unsigned long long)m.task_id);
    worker_pool_python_done(p, s);
    worker_pool_release(p, s);
}

int main(void)
{
    struct worker_pool *p = NULL;

    signal(SIGPIPE, SIG_IGN);
    if (worker_pool_create("/bin/cat", 1, &p) != 0) {
        fprintf(stderr, "cannot create the pool\n");
        return 1;
    }
    test_no_kill_after_python_is_done(p);
    test_a_process_killed_for_a_finished_task_is_replaced(p, 0);
    test_a_process_killed_for_a_finished_task_is_replaced(p, 1);
    worker_pool_destroy(p);
    return TEST_EXIT();
}
