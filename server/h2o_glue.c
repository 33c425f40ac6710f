/* h2o_glue: see h2o_glue.h. The only file that relies on h2o 2.2.5 internals. */
#include "h2o_glue.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* Mirrors lib/common/socket/evloop/epoll.c.h of h2o 2.2.5:
 *   struct st_h2o_evloop_epoll_t { h2o_evloop_t super; int ep; };
 * h2o has no getter for the epoll fd; the layout is checked at run time below. */
struct h2o_glue_evloop_epoll_layout {
    h2o_evloop_t super;
    int ep;
};

/* Bounds the loop in h2o_glue_run_until_idle: a timeout that keeps re-arming itself at zero must not
 * starve libev's other watchers; the worker comes back on its next iteration. */
#define RUN_UNTIL_IDLE_MAX_ROUNDS 16

int h2o_glue_epoll_fd(h2o_evloop_t *loop, int *out_fd, char *err, size_t err_size)
{
    int fd = ((struct h2o_glue_evloop_epoll_layout *)loop)->ep;
    char proc_path[64], target[64];
    snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", fd);
    ssize_t n = fd >= 0 ? readlink(proc_path, target, sizeof(target) - 1) : -1;
    if (n < 0) {
        snprintf(err, err_size, "h2o's event loop layout is not what this build expects (fd %d unreadable)", fd);
        return -1;
    }
    target[n] = '\0';
    if (strcmp(target, "anon_inode:[eventpoll]") != 0) {
        snprintf(err, err_size, "h2o's event loop layout is not what this build expects (fd %d is %s, not an epoll fd)", fd,
                 target);
        return -1;
    }
    *out_fd = fd;
    return 0;
}

static uint64_t wall_clock_ms(void)
{
    /* h2o 2.2.5 keeps time as gettimeofday() milliseconds; compare in the same units */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

bool h2o_glue_has_pending_work(h2o_evloop_t *loop)
{
    if (loop->_pending_as_client != NULL || loop->_pending_as_server != NULL || loop->_statechanged.head != NULL)
        return true;
    return h2o_timeout_get_wake_at(&loop->_timeouts) <= wall_clock_ms();
}

void h2o_glue_run_until_idle(h2o_evloop_t *loop)
{
    for (int round = 0; round < RUN_UNTIL_IDLE_MAX_ROUNDS; round++) {
        h2o_evloop_run(loop, 0);
        if (!h2o_glue_has_pending_work(loop))
            return;
    }
}

uint64_t h2o_glue_next_timeout_ms(h2o_evloop_t *loop)
{
    uint64_t wake_at = h2o_timeout_get_wake_at(&loop->_timeouts);
    if (wake_at == UINT64_MAX)
        return UINT64_MAX;
    uint64_t now = wall_clock_ms();
    return wake_at <= now ? 0 : wake_at - now;
}
