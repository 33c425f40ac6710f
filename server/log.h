/* log: one-line messages on stderr, prefixed with the process role and pid. */
#ifndef MOCKUPSTREAM_LOG_H
#define MOCKUPSTREAM_LOG_H

/* Sets the prefix for this process ("master", "worker 3"). */
void log_set_role(const char *role);

/* Sends this process's lines to fd from now on (a worker's real stderr, see stderr_limit.h). */
void log_set_fd(int fd);

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
