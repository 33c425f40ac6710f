/* stderr_limit: see stderr_limit.h. */
#include "stderr_limit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if MOCKUPSTREAM_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

#include "clock.h"
#include "log.h"

#define WINDOW_NS NS_PER_SEC
/* A big pipe absorbs a burst between two loop iterations without dropping lines; 1 MiB is the
 * default /proc/sys/fs/pipe-max-size (if refused, the 64 KiB default stays). */
#define PIPE_BYTES (1024 * 1024)
/* Longer lines are cut: they are forwarded (or summarised) truncated. */
#define LINE_MAX_BYTES 400
#define SAMPLE_MAX_BYTES 120
/* Per readiness callback; the rest waits for the next loop iteration so the flood cannot starve
 * the worker's other watchers. */
#define READS_PER_CALLBACK 16
#define READ_BYTES 65536

struct stderr_limit {
    int pipe_fd; /* read end; fd 2 is the write end */
    int real_fd; /* the stderr the worker inherited */
    ev_io readable;
    ev_timer window_end;
    uint64_t window_started_ns;
    unsigned window_lines; /* forwarded in the current window */
    uint64_t suppressed;   /* counted, not forwarded, in the current window */
    char sample[SAMPLE_MAX_BYTES + 1]; /* the last suppressed line, for the summary */
    char partial[LINE_MAX_BYTES];      /* a line whose end has not been read yet */
    size_t partial_len;
    char read_buf[READ_BYTES];
};

/* For the SIGABRT handler only (it gets no context): set once in stderr_limit_start. */
static int abort_pipe_fd = -1, abort_real_fd = -1;

static void on_abort(int sig)
{
    char buf[4096];
    ssize_t n;
    /* async-signal-safe: read/write only; bounded in case a writer keeps the pipe full */
    for (int i = 0; i < 256 && (n = read(abort_pipe_fd, buf, sizeof(buf))) > 0; i++) {
        ssize_t ignored = write(abort_real_fd, buf, (size_t)n);
        (void)ignored;
    }
    raise(sig); /* SA_RESETHAND restored the default action: die as abort() meant to */
}

static void window_summarize(struct stderr_limit *limit, uint64_t now_ns)
{
    if (limit->suppressed != 0)
        log_msg("library output: at least %llu more lines in the last %.1f s not shown (at most %d lines/s are); last: %s",
                (unsigned long long)limit->suppressed, (double)(now_ns - limit->window_started_ns) / NS_PER_SEC,
                STDERR_LIMIT_LINES_PER_SECOND, limit->sample);
    limit->window_started_ns = now_ns;
    limit->window_lines = 0;
    limit->suppressed = 0;
}

static void on_window_end(struct ev_loop *loop, ev_timer *timer, int revents)
{
    window_summarize(timer->data, clock_monotonic_ns());
}

static void copy_printable(char *dst, size_t dst_size, const char *src, size_t len)
{
    size_t n = len < dst_size - 1 ? len : dst_size - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i];
    dst[n] = '\0';
}

static void on_line(struct stderr_limit *limit, struct ev_loop *loop, const char *line, size_t len, uint64_t now_ns)
{
    if (now_ns - limit->window_started_ns >= WINDOW_NS && !ev_is_active(&limit->window_end))
        window_summarize(limit, now_ns);
    if (limit->window_lines < STDERR_LIMIT_LINES_PER_SECOND) {
        char text[LINE_MAX_BYTES + 1];
        copy_printable(text, sizeof(text), line, len);
        log_msg("%s", text);
        limit->window_lines++;
        return;
    }
    if (limit->suppressed++ == 0) {
        uint64_t left_ns = limit->window_started_ns + WINDOW_NS - now_ns;
        ev_timer_set(&limit->window_end, clock_ns_to_ev_seconds(left_ns <= WINDOW_NS ? left_ns : WINDOW_NS), 0.);
        ev_timer_start(loop, &limit->window_end);
    }
    copy_printable(limit->sample, sizeof(limit->sample), line, len);
}

static void consume(struct stderr_limit *limit, struct ev_loop *loop, const char *p, size_t len, uint64_t now_ns)
{
    const char *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t seg = (size_t)((nl != NULL ? nl : end) - p);
        if (nl == NULL || limit->partial_len != 0) {
            size_t room = sizeof(limit->partial) - limit->partial_len;
            size_t take = seg < room ? seg : room;
            memcpy(limit->partial + limit->partial_len, p, take);
            limit->partial_len += take;
            if (nl == NULL)
                return;
            on_line(limit, loop, limit->partial, limit->partial_len, now_ns);
            limit->partial_len = 0;
        } else {
            on_line(limit, loop, p, seg, now_ns);
        }
        p = nl + 1;
    }
}

static void on_readable(struct ev_loop *loop, ev_io *watcher, int revents)
{
    struct stderr_limit *limit = watcher->data;
    uint64_t now_ns = clock_monotonic_ns();
    for (int i = 0; i < READS_PER_CALLBACK; i++) {
        ssize_t n = read(limit->pipe_fd, limit->read_buf, sizeof(limit->read_buf));
        if (n <= 0)
            return; /* EAGAIN: drained (the write end is fd 2 itself, so never EOF) */
        consume(limit, loop, limit->read_buf, (size_t)n, now_ns);
        if ((size_t)n < sizeof(limit->read_buf))
            return;
    }
}

int stderr_limit_start(struct ev_loop *loop, char *err, size_t err_size)
{
    struct stderr_limit *limit = calloc(1, sizeof(*limit));
    int fds[2] = {-1, -1};
    if (limit == NULL) {
        snprintf(err, err_size, "stderr limit: out of memory");
        return -1;
    }
    limit->real_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (limit->real_fd < 0 || pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, err_size, "stderr limit: %s", strerror(errno));
        goto fail;
    }
    (void)fcntl(fds[1], F_SETPIPE_SZ, PIPE_BYTES);
    /* dup2 clears FD_CLOEXEC on fd 2, as a stderr should be; O_NONBLOCK lives in the pipe's open
     * file description and stays */
    if (dup2(fds[1], STDERR_FILENO) < 0) {
        snprintf(err, err_size, "stderr limit: %s", strerror(errno));
        goto fail;
    }
    close(fds[1]);
    limit->pipe_fd = fds[0];
    log_set_fd(limit->real_fd);
#if MOCKUPSTREAM_SANITIZED
    __sanitizer_set_report_fd((void *)(intptr_t)limit->real_fd);
#endif
    abort_pipe_fd = limit->pipe_fd;
    abort_real_fd = limit->real_fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_abort;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGABRT, &sa, NULL);

    limit->window_started_ns = clock_monotonic_ns();
    ev_io_init(&limit->readable, on_readable, limit->pipe_fd, EV_READ);
    limit->readable.data = limit;
    ev_io_start(loop, &limit->readable);
    ev_init(&limit->window_end, on_window_end);
    limit->window_end.data = limit;
    return 0;

fail:
    if (limit->real_fd >= 0)
        close(limit->real_fd);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    free(limit);
    return -1;
}
