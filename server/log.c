#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Set once per process right after fork; not shared between processes. */
static char log_role[32] = "mockupstream";
/* Where log_msg writes: fd 2, or the real stderr once stderr_limit owns fd 2 (set once per worker). */
static int log_fd = STDERR_FILENO;

void log_set_fd(int fd)
{
    log_fd = fd;
}

void log_set_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role);
}

void log_msg(const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "mockupstream[%d] %s: ", (int)getpid(), log_role);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    /* one write per line so lines from several workers do not interleave */
    ssize_t ignored = write(log_fd, line, len);
    (void)ignored;
}
