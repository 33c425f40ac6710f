/* stderr_limit: bounds how much the libraries in a worker can write to stderr.
 *
 * h2o 2.2.5 (and OpenSSL, and anything else linked in) writes to fd 2 directly, in places once per
 * frame a client sends (lib/http2/connection.c: "skipping frame (type:N)" for every frame of an
 * unknown type). One client could make a worker write megabytes of log per second and spend its CPU
 * on it. So in a worker, fd 2 becomes the write end of a non-blocking pipe that the worker's loop
 * drains: at most STDERR_LIMIT_LINES_PER_SECOND lines per second reach the real stderr (prefixed like
 * log_msg lines), the rest are counted and reported in one summary line per second. A write to a full
 * pipe fails at once (EAGAIN), so a library never blocks on it; such a line is lost uncounted, which
 * is why the summary says "at least".
 *
 * The project's own log_msg() keeps writing to the real stderr (log_set_fd), unlimited. Sanitizer
 * reports go to the real stderr as well, and on SIGABRT (an assert() failing in a library) whatever
 * is still in the pipe is copied to the real stderr first, so the reason for a crash is not lost.
 *
 * fd 2 is process-wide, so this is too: start it once per worker, right after fork, before anything
 * else runs. The few fields the SIGABRT handler needs are the only static state (set once there). */
#ifndef MOCKUPSTREAM_STDERR_LIMIT_H
#define MOCKUPSTREAM_STDERR_LIMIT_H

#include <ev.h>
#include <stddef.h>

#define STDERR_LIMIT_LINES_PER_SECOND 10

/* Redirects fd 2 into the rate-limiting pipe drained by `loop`. Returns 0, or -1 with one line in
 * err (fd 2 is then left as it was). */
int stderr_limit_start(struct ev_loop *loop, char *err, size_t err_size);

#endif
