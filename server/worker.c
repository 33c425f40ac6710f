#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "h2o_frontend.h"
#include "h2o_limits.h"
#include "log.h"
#include "stderr_limit.h"

/* Accepts per readiness callback: enough to empty a burst, few enough to keep serving others. */
#define ACCEPT_BATCH 64
/* Out of file descriptors: how often to try accepting again if no connection closes first. */
#define ACCEPT_RETRY_SECONDS 0.1
/* Drain: once nothing is held, connections get this long to flush and close before exit. */
#define DRAIN_LINGER_NS (100 * NS_PER_MS)
#define DRAIN_CHECK_SECONDS 0.01
#define FD_EXHAUSTION_LOG_INTERVAL_NS (10 * NS_PER_SEC)

/* ---- accepting ---- */

static void listeners_start(struct worker *worker)
{
    for (size_t i = 0; i < worker->listener_count; i++)
        if (worker->listeners[i].fd >= 0)
            ev_io_start(worker->loop, &worker->listeners[i].watcher);
}

static void listeners_stop(struct worker *worker)
{
    for (size_t i = 0; i < worker->listener_count; i++)
        ev_io_stop(worker->loop, &worker->listeners[i].watcher);
}

/* Out of file descriptors. A level-triggered listener would wake us forever, so stop watching until
 * a connection closes or the retry timer fires; existing connections keep being served. */
static void accept_pause(struct worker *worker, int error)
{
    stats_add(&worker->slot->accept_fd_exhausted, 1);
    if (worker->accept_paused)
        return;
    worker->accept_paused = true;
    listeners_stop(worker);
    ev_timer_again(worker->loop, &worker->accept_resume_timer);
    uint64_t now_ns = clock_monotonic_ns();
    if (worker->fd_exhaustion_logged_at_ns == 0 || now_ns - worker->fd_exhaustion_logged_at_ns >= FD_EXHAUSTION_LOG_INTERVAL_NS) {
        log_msg("cannot accept: %s; pausing accept until connections close (existing ones keep being served)", strerror(error));
        worker->fd_exhaustion_logged = true;
        worker->fd_exhaustion_logged_at_ns = now_ns;
    }
}

static void accept_resume(struct worker *worker)
{
    if (!worker->accept_paused || worker->draining)
        return;
    worker->accept_paused = false;
    ev_timer_stop(worker->loop, &worker->accept_resume_timer);
    listeners_start(worker);
}

static void on_accept_resume_timer(struct ev_loop *loop, ev_timer *watcher, int revents)
{
    struct worker *worker = watcher->data;
    accept_resume(worker);
    /* if still out of fds, the next accept pauses again (without logging a second time) */
}

/* The request core's hook: a connection closed, so a file descriptor may be free again. */
static void on_connection_closed(void *owner)
{
    struct worker *worker = owner;
    if (worker->accept_paused)
        accept_resume(worker);
}

static void on_listener_readable(struct ev_loop *loop, ev_io *watcher, int revents)
{
    struct worker_listener *listener = watcher->data;
    struct worker *worker = listener->worker;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            switch (errno) {
            case EAGAIN:
                return;
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
                continue;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                accept_pause(worker, errno);
                return;
            default:
                log_msg("accept on %s: %s", worker->config->listeners[listener - worker->listeners].text, strerror(errno));
                return;
            }
        }
        if (worker->fd_exhaustion_logged) {
            worker->fd_exhaustion_logged = false;
            log_msg("accepting connections again");
        }
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        stats_add(&worker->slot->connections_accepted[listener->kind], 1);
        /* every connection starts on the lean HTTP/1.1 loop, which hands HTTP/2 (h2c, or a TLS
         * ClientHello offering h2) over to h2o itself */
        http1_server_accept(&worker->http1, fd, listener->kind);
    }
}

/* ---- draining ---- */

static uint64_t open_connections(const struct worker *worker)
{
    uint64_t open = 0;
    for (int kind = 0; kind < LISTENER_KIND_COUNT; kind++)
        open += worker->slot->connections_accepted[kind] - worker->slot->connections_closed[kind];
    return open;
}

static void drain_finish(struct worker *worker, int status)
{
    if (status == WORKER_EXIT_DRAIN_TIMEOUT)
        log_msg("drain timeout: %zu held requests or paced bodies unanswered, %zu HTTP/1.1 responses still being written, "
                "%zu HTTP/2 connections still sending",
                worker->delays.queued - worker->core.hangs_now, http1_server_responses_in_flight(&worker->http1),
                h2o_frontend_draining_connections(worker->h2o));
    h2o_frontend_flush(worker->h2o);
    exit(status);
}

static void drain_check(struct worker *worker)
{
    uint64_t now_ns = clock_monotonic_ns();
    bool deadline_passed = now_ns >= worker->drain_deadline_ns;
    /* a response still being written (or paced) counts as unanswered, as a held one does; a hang
     * fault is never answered, so it does not hold the drain up (its connection closes at exit) */
    if (worker->delays.queued - worker->core.hangs_now != 0 || http1_server_responses_in_flight(&worker->http1) != 0) {
        worker->drain_quiet_since_ns = 0;
        if (deadline_passed)
            drain_finish(worker, WORKER_EXIT_DRAIN_TIMEOUT);
        return;
    }
    if (worker->drain_quiet_since_ns == 0)
        worker->drain_quiet_since_ns = now_ns;
    /* an HTTP/2 connection with a hung stream never finishes its GOAWAY: do not wait for it */
    bool http2_done = h2o_frontend_drained(worker->h2o) || worker->core.hangs_now != 0;
    if (open_connections(worker) == 0 || (now_ns - worker->drain_quiet_since_ns >= DRAIN_LINGER_NS && http2_done))
        drain_finish(worker, WORKER_EXIT_OK);
    else if (deadline_passed) /* HTTP/2 streams still sending (a client that does not read) are cut */
        drain_finish(worker, http2_done ? WORKER_EXIT_OK : WORKER_EXIT_DRAIN_TIMEOUT);
}

static void on_drain_timer(struct ev_loop *loop, ev_timer *watcher, int revents)
{
    drain_check(watcher->data);
}

static void drain_start(struct worker *worker)
{
    worker->draining = true;
    worker->core.draining = true;
    worker->drain_deadline_ns = clock_monotonic_ns() + worker->config->drain_timeout_ns;
    listeners_stop(worker);
    ev_timer_stop(worker->loop, &worker->accept_resume_timer);
    for (size_t i = 0; i < worker->listener_count; i++) {
        close(worker->listeners[i].fd);
        worker->listeners[i].fd = -1;
    }
    h2o_frontend_request_shutdown(worker->h2o);
    http1_server_request_shutdown(&worker->http1);
    ev_timer_init(&worker->drain_timer, on_drain_timer, DRAIN_CHECK_SECONDS, DRAIN_CHECK_SECONDS);
    worker->drain_timer.data = worker;
    ev_timer_start(worker->loop, &worker->drain_timer);
    if (worker->delays.queued - worker->core.hangs_now != 0)
        log_msg("draining %zu held requests and paced bodies", worker->delays.queued - worker->core.hangs_now);
}

static void on_sigterm(struct ev_loop *loop, ev_signal *watcher, int revents)
{
    struct worker *worker = watcher->data;
    if (worker->draining) {
        log_msg("second signal: exiting at once with %zu held requests", worker->delays.queued);
        exit(WORKER_EXIT_DRAIN_TIMEOUT);
    }
    drain_start(worker);
}

/* ---- the loop ---- */

/* Everything the worker does before its loop blocks, in one place and in this order: answer what is
 * due, guard new HTTP/2 connections before h2o reads more, let h2o write what it queued, check the
 * drain, and last arm the delay timer for whatever the steps before queued. */
static void on_before_block(struct ev_loop *loop, ev_prepare *watcher, int revents)
{
    struct worker *worker = watcher->data;
    delay_queue_fire_due(&worker->delays);
    h2o_limits_before_block(worker->h2o_limits);
    h2o_frontend_flush(worker->h2o);
    if (worker->draining)
        drain_check(worker);
    delay_queue_before_block(&worker->delays);
}

static void worker_fail(const char *what, const char *detail)
{
    log_msg("cannot start: %s: %s", what, detail);
    exit(WORKER_EXIT_STARTUP_FAILED);
}

void worker_main(const struct worker_setup *setup)
{
    char role[32], err[256];
    snprintf(role, sizeof(role), "worker %u", setup->index);
    log_set_role(role);

    /* The master blocks these to wait for them synchronously; a worker takes them as events. SIGTERM
     * stays blocked until its watcher is installed (ev_signal_start unblocks it): a drain that
     * starts while a worker is still starting (slow under ASan) must not kill it with the default
     * action; the pending signal is delivered to the watcher instead. */
    sigset_t only_term;
    sigemptyset(&only_term);
    sigaddset(&only_term, SIGTERM);
    sigprocmask(SIG_SETMASK, &only_term, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Ctrl-C reaches the whole process group; the master turns it into one SIGTERM per worker. */
    signal(SIGINT, SIG_IGN);
    /* If the master dies, drain and exit rather than keep the port as an orphan. */
    /* The master may have died before the prctl: then getppid() is already someone else (init or a
     * subreaper), and comparing with a getppid() read here would miss it; the pid read before fork
     * does not. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != setup->master_pid)
        exit(WORKER_EXIT_OK);

    static struct worker worker_storage;
    struct worker *worker = &worker_storage;
    worker->index = setup->index;
    worker->config = setup->config;
    worker->slot = &setup->stats->workers[setup->index];
    __atomic_store_n(&worker->slot->pid, (int64_t)getpid(), __ATOMIC_RELAXED);
    __atomic_store_n(&worker->slot->started_at_unix_ns, clock_realtime_ns(), __ATOMIC_RELAXED);

    worker->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (worker->loop == NULL)
        worker_fail("libev", "no epoll backend");
    if (stderr_limit_start(worker->loop, err, sizeof(err)) != 0) /* before h2o can write to fd 2 */
        worker_fail("stderr", err);
    if (delay_queue_init(&worker->delays, worker->loop) != 0)
        worker_fail("timerfd", strerror(errno));
    /* a restarted worker draws a fresh stream rather than replaying its predecessor's (prng.h) */
    uint64_t stream = setup->index + (uint64_t)setup->config->workers * stats_read(&worker->slot->restarts);
    if (request_core_init(&worker->core, setup->config, setup->stats, worker->slot, stream, &worker->delays,
                          on_connection_closed, worker) != 0)
        worker_fail("body fill", strerror(errno));
    worker->h2o = calloc(1, sizeof(*worker->h2o));
    if (worker->h2o == NULL || h2o_frontend_init(worker->h2o, worker->loop, &worker->core, setup->h2o_shared, err, sizeof(err)) != 0)
        worker_fail("h2o", worker->h2o ? err : "out of memory");
    if ((worker->h2o_limits = h2o_limits_start(worker->loop, worker->h2o, setup->config, err, sizeof(err))) == NULL)
        worker_fail("h2o limits", err);
    if (http1_server_init(&worker->http1, worker->loop, &worker->core, worker->h2o, setup->h2o_shared->ssl_ctx) != 0)
        worker_fail("http1", "out of memory");

    worker->listener_count = setup->config->listener_count;
    for (size_t i = 0; i < worker->listener_count; i++) {
        struct worker_listener *listener = &worker->listeners[i];
        listener->worker = worker;
        listener->fd = setup->listener_fds[i];
        listener->kind = setup->config->listeners[i].kind;
        ev_io_init(&listener->watcher, on_listener_readable, listener->fd, EV_READ);
        listener->watcher.data = listener;
    }
    listeners_start(worker);
    ev_init(&worker->accept_resume_timer, on_accept_resume_timer);
    worker->accept_resume_timer.repeat = ACCEPT_RETRY_SECONDS;
    worker->accept_resume_timer.data = worker;

    ev_prepare_init(&worker->before_block_watcher, on_before_block);
    worker->before_block_watcher.data = worker;
    ev_prepare_start(worker->loop, &worker->before_block_watcher);
    ev_signal_init(&worker->sigterm_watcher, on_sigterm, SIGTERM);
    worker->sigterm_watcher.data = worker;
    ev_signal_start(worker->loop, &worker->sigterm_watcher);
    sigprocmask(SIG_UNBLOCK, &only_term, NULL); /* libev did already; kept explicit for the reader */

    ev_run(worker->loop, 0);
    exit(WORKER_EXIT_OK);
}
