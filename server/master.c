#include "master.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "worker.h"

/* A worker that dies this soon after starting, twice in a row, is probably failing at start-up: wait
 * before trying again, so a broken environment does not turn into a fork loop. A single death (an
 * operator's kill -9) is restarted at once. */
#define CRASH_LOOP_WINDOW_NS (1 * NS_PER_SEC)
#define CRASH_LOOP_BACKOFF_NS (500 * NS_PER_MS)
/* After the drain timeout, how long the master waits for workers before SIGKILL. */
#define DRAIN_KILL_GRACE_NS (2 * NS_PER_SEC)
#define WAIT_TICK_NS (50 * NS_PER_MS)

struct worker_process {
    pid_t pid;               /* 0 when not running */
    uint64_t started_ns;
    uint64_t restart_at_ns;  /* when to fork a replacement; 0 if none is due */
    int exit_status;         /* how it ended during the drain */
    unsigned quick_deaths;   /* consecutive deaths within CRASH_LOOP_WINDOW_NS of starting */
};

struct master {
    const struct master_setup *setup;
    struct worker_process *workers;
    bool draining;
    uint64_t drain_kill_at_ns;
};

void master_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

static void close_listeners_except(const struct master_setup *setup, unsigned keep_index)
{
    const struct config *cfg = setup->config;
    for (unsigned w = 0; w < cfg->workers; w++) {
        if (w == keep_index)
            continue;
        for (size_t l = 0; l < cfg->listener_count; l++) {
            int *fd = &setup->listener_fds[w * cfg->listener_count + l];
            if (*fd >= 0)
                close(*fd);
            *fd = -1;
        }
    }
}

static void spawn(struct master *master, unsigned index)
{
    const struct master_setup *setup = master->setup;
    pid_t master_pid = getpid(); /* read before fork: the child cannot tell a dead parent from init */
    pid_t pid = fork();
    if (pid < 0) {
        log_msg("fork for worker %u: %s; retrying", index, strerror(errno));
        master->workers[index].restart_at_ns = clock_monotonic_ns() + CRASH_LOOP_BACKOFF_NS;
        return;
    }
    if (pid == 0) {
        close_listeners_except(setup, index);
        struct worker_setup worker_setup = {
            .index = index,
            .master_pid = master_pid,
            .config = setup->config,
            .stats = setup->stats,
            .h2o_shared = setup->h2o_shared,
            .listener_fds = &setup->listener_fds[index * setup->config->listener_count],
        };
        worker_main(&worker_setup);
    }
    /* The worker stores its pid too, but only once it runs: written here as well, /stats never shows
     * a live worker as pid 0 (a client that signals "pid 0" signals its own process group). */
    __atomic_store_n(&setup->stats->workers[index].pid, (int64_t)pid, __ATOMIC_RELAXED);
    master->workers[index] = (struct worker_process){
        .pid = pid, .started_ns = clock_monotonic_ns(), .quick_deaths = master->workers[index].quick_deaths};
}

static const char *describe_exit(int status, char *buf, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    return buf;
}

static void reap_children(struct master *master)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (unsigned i = 0; i < master->setup->config->workers; i++) {
            struct worker_process *w = &master->workers[i];
            if (w->pid != pid)
                continue;
            struct stats_worker_slot *slot = &master->setup->stats->workers[i];
            stats_slot_reset_after_death(slot);
            w->pid = 0;
            char why[96];
            if (master->draining) {
                /* keep a drain timeout already recorded when the master had to kill it */
                if (w->exit_status == 0)
                    w->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : MASTER_EXIT_FAILED;
                if (w->exit_status != 0)
                    log_msg("worker %u %s during the drain", i, describe_exit(status, why, sizeof(why)));
                break;
            }
            uint64_t now = clock_monotonic_ns();
            w->quick_deaths = now - w->started_ns < CRASH_LOOP_WINDOW_NS ? w->quick_deaths + 1 : 0;
            bool crash_loop = w->quick_deaths >= 2;
            log_msg("worker %u (pid %d) %s; restarting%s", i, (int)pid, describe_exit(status, why, sizeof(why)),
                    crash_loop ? " in 0.5 s (it keeps dying right after starting)" : "");
            /* the slot's owner is gone; the master writes restarts between two owners */
            stats_add(&slot->restarts, 1);
            w->restart_at_ns = crash_loop ? now + CRASH_LOOP_BACKOFF_NS : now;
            break;
        }
    }
}

static void restart_due_workers(struct master *master)
{
    uint64_t now = clock_monotonic_ns();
    for (unsigned i = 0; i < master->setup->config->workers; i++) {
        struct worker_process *w = &master->workers[i];
        if (!master->draining && w->pid == 0 && w->restart_at_ns != 0 && w->restart_at_ns <= now)
            spawn(master, i);
    }
}

static void signal_workers(struct master *master, int sig)
{
    for (unsigned i = 0; i < master->setup->config->workers; i++)
        if (master->workers[i].pid > 0)
            kill(master->workers[i].pid, sig);
}

static bool any_worker_running(const struct master *master)
{
    for (unsigned i = 0; i < master->setup->config->workers; i++)
        if (master->workers[i].pid > 0)
            return true;
    return false;
}

static void drain_start(struct master *master, int sig)
{
    const struct config *cfg = master->setup->config;
    master->draining = true;
    master->drain_kill_at_ns = clock_monotonic_ns() + cfg->drain_timeout_ns + DRAIN_KILL_GRACE_NS;
    /* the kernel keeps routing connections to a listening socket while any process holds it open */
    close_listeners_except(master->setup, cfg->workers);
    log_msg("%s: draining (up to %.3f s); a second signal exits at once", strsignal(sig),
            (double)cfg->drain_timeout_ns / NS_PER_SEC);
    signal_workers(master, SIGTERM);
}

static int drain_result(const struct master *master)
{
    int result = MASTER_EXIT_OK;
    for (unsigned i = 0; i < master->setup->config->workers; i++) {
        int status = master->workers[i].exit_status;
        if (status == WORKER_EXIT_DRAIN_TIMEOUT)
            result = MASTER_EXIT_DRAIN_TIMEOUT;
        else if (status != 0 && result == MASTER_EXIT_OK)
            result = MASTER_EXIT_FAILED;
    }
    log_msg(result == MASTER_EXIT_OK ? "drained; exiting" : "exiting; the drain did not complete (status %d)", result);
    return result;
}

int master_run(const struct master_setup *setup)
{
    struct master master = {.setup = setup};
    unsigned count = setup->config->workers;
    master.workers = calloc(count, sizeof(*master.workers));
    if (master.workers == NULL) {
        log_msg("out of memory");
        return MASTER_EXIT_FAILED;
    }
    for (unsigned i = 0; i < count; i++)
        spawn(&master, i);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    for (;;) {
        struct timespec tick = {.tv_sec = 0, .tv_nsec = (long)WAIT_TICK_NS};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &tick);
        if (sig == SIGCHLD || sig < 0)
            reap_children(&master);
        if (sig == SIGTERM || sig == SIGINT) {
            if (master.draining) {
                log_msg("%s again: exiting at once", strsignal(sig));
                signal_workers(&master, SIGKILL);
                free(master.workers);
                return MASTER_EXIT_FAILED;
            }
            drain_start(&master, sig);
        }
        if (master.draining) {
            reap_children(&master);
            if (!any_worker_running(&master))
                break;
            if (clock_monotonic_ns() >= master.drain_kill_at_ns) {
                log_msg("workers did not exit after the drain timeout; killing them");
                signal_workers(&master, SIGKILL);
                for (unsigned i = 0; i < count; i++)
                    if (master.workers[i].pid > 0)
                        master.workers[i].exit_status = WORKER_EXIT_DRAIN_TIMEOUT;
            }
        } else {
            restart_due_workers(&master);
        }
    }
    int result = drain_result(&master);
    free(master.workers);
    return result;
}
