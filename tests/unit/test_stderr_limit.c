/* Unit tests for server/stderr_limit.c on a real libev loop: a library's flood of stderr lines
 * reaches the real stderr as at most STDERR_LIMIT_LINES_PER_SECOND lines plus one summary per
 * second; log_msg() is not limited; a library writing to a full pipe is never blocked. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "stderr_limit.h"
#include "unit.h"

static char captured[1 << 16];
/* kept reachable: the limiter lives as long as its loop, which lives as long as the process */
static struct ev_loop *loop;

static void on_stop(struct ev_loop *loop, ev_timer *timer, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void run_loop_for(double seconds)
{
    ev_timer stop;
    ev_now_update(loop); /* the writes above took time the loop has not seen */
    ev_timer_init(&stop, on_stop, seconds, 0.);
    ev_timer_start(loop, &stop);
    ev_run(loop, 0);
    ev_timer_stop(loop, &stop);
}

static size_t count_lines(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *line = text; *line; ) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (needle == NULL || memmem(line, len, needle, strlen(needle)) != NULL)
            n++;
        line += len + (end ? 1 : 0);
    }
    return n;
}

static void read_capture(int fd)
{
    memset(captured, 0, sizeof(captured));
    ssize_t n = pread(fd, captured, sizeof(captured) - 1, 0);
    CHECK(n >= 0);
}

static void test_flood_is_limited_and_summarised(void)
{
    char path[] = "/tmp/test_stderr_limit.XXXXXX";
    int capture_fd = mkstemp(path);
    CHECK(capture_fd >= 0);
    unlink(path);
    int saved_stderr = dup(STDERR_FILENO);
    dup2(capture_fd, STDERR_FILENO); /* the "real" stderr the limiter will forward to */

    loop = ev_loop_new(EVBACKEND_EPOLL);
    char err[256];
    CHECK(stderr_limit_start(loop, err, sizeof(err)) == 0);

    /* a library writing once per frame, as h2o 2.2.5 does for unknown frame types */
    for (int i = 0; i < 5000; i++)
        fprintf(stderr, "skipping frame (type:%d)\n", i);
    for (int i = 0; i < 30; i++)
        log_msg("own line %d", i);
    run_loop_for(1.3);

    read_capture(capture_fd);
    CHECK(count_lines(captured, "mockupstream: skipping frame") == STDERR_LIMIT_LINES_PER_SECOND);
    CHECK(count_lines(captured, "skipping frame (type:0)") == 1);
    CHECK(count_lines(captured, "at least 4990 more lines") == 1);
    CHECK(count_lines(captured, "own line") == 30);

    /* a second burst after the window: forwarded again up to the limit */
    for (int i = 0; i < 3; i++)
        fprintf(stderr, "later line %d\n", i);
    run_loop_for(0.2);
    read_capture(capture_fd);
    CHECK(count_lines(captured, "mockupstream: later line") == 3);

    /* far more than the pipe holds, with the loop not draining: every write returns at once */
    uint64_t t0 = clock_monotonic_ns();
    for (int i = 0; i < 200000; i++)
        fprintf(stderr, "flood line %d, long enough to fill a pipe quickly................................\n", i);
    CHECK(clock_monotonic_ns() - t0 < 5 * NS_PER_SEC);
    run_loop_for(1.3);
    read_capture(capture_fd);
    CHECK(count_lines(captured, "mockupstream: flood line") <= STDERR_LIMIT_LINES_PER_SECOND);
    CHECK(count_lines(captured, "more lines in the last") == 2);
    if (unit_checks_failed_in_test)
        printf("%s", captured);

    dup2(saved_stderr, STDERR_FILENO);
    log_set_fd(STDERR_FILENO);
    close(saved_stderr);
    close(capture_fd);
}

int main(void)
{
    RUN(test_flood_is_limited_and_summarised);
    return unit_finish();
}
