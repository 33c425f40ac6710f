#include "process_metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* /proc/<pid>/stat is a few hundred bytes; /proc/<pid>/limits about 1.4 KB. */
#define PROC_FILE_MAX_BYTES 4096

/* Reads /proc/<pid>/<name> into buf (NUL-terminated). Returns 0 or -1. */
static int read_proc_file(pid_t pid, const char *name, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return len > 0 ? 0 : -1;
}

static uint64_t ticks_to_ns(uint64_t ticks, uint64_t ticks_per_second)
{
    return ticks / ticks_per_second * NS_PER_SEC + ticks % ticks_per_second * NS_PER_SEC / ticks_per_second;
}

int process_metrics_parse_stat(const char *text, uint64_t ticks_per_second, uint64_t page_bytes, uint64_t boot_unix_ns,
                               struct process_metrics *out)
{
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are counted from
     * the last ')'. Field numbers below are proc(5)'s. */
    const char *p = strrchr(text, ')');
    if (p == NULL || ticks_per_second == 0)
        return -1;
    p++;
    uint64_t utime = 0, stime = 0, starttime = 0, vsize = 0, rss = 0;
    for (int field = 3; field <= 24; field++) {
        while (*p == ' ')
            p++;
        if (*p == '\0' || *p == '\n')
            return -1;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (field == 3) /* state is a letter */
            end = (char *)p + strcspn(p, " ");
        else if (end == p && *p != '-')
            return -1;
        switch (field) {
        case 14: utime = v; break;
        case 15: stime = v; break;
        case 22: starttime = v; break;
        case 23: vsize = v; break;
        case 24: rss = v; break;
        }
        p = end + strcspn(end, " \n");
    }
    out->cpu_ns = ticks_to_ns(utime + stime, ticks_per_second);
    out->start_unix_ns = boot_unix_ns + ticks_to_ns(starttime, ticks_per_second);
    out->virtual_memory_bytes = vsize;
    out->resident_memory_bytes = rss * page_bytes;
    return 0;
}

int process_metrics_parse_limits(const char *text, uint64_t *max_fds)
{
    /* "Max open files            20000                20000                files     " */
    const char *line = strstr(text, "Max open files");
    if (line == NULL)
        return -1;
    const char *p = line + strlen("Max open files");
    while (*p == ' ')
        p++;
    if (strncmp(p, "unlimited", strlen("unlimited")) == 0) {
        *max_fds = 0;
        return 0;
    }
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p)
        return -1;
    *max_fds = v;
    return 0;
}

static uint64_t count_open_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    /* Linux 6.2+ reports the number of open descriptors as the size of this directory: one call
     * instead of listing 20,000 entries when 20,000 connections are open. */
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0)
        return (uint64_t)st.st_size;
    DIR *dir = opendir(path);
    if (dir == NULL)
        return 0;
    uint64_t n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

static uint64_t boot_unix_ns(void)
{
    /* /proc/<pid>/stat's start time counts ticks since boot (CLOCK_BOOTTIME, which includes time
     * suspended); the wall clock of boot is the difference of the two clocks now. */
    struct timespec boot;
    clock_gettime(CLOCK_BOOTTIME, &boot);
    uint64_t boot_ns = (uint64_t)boot.tv_sec * NS_PER_SEC + (uint64_t)boot.tv_nsec;
    return clock_realtime_ns() - boot_ns;
}

int process_metrics_read(pid_t pid, struct process_metrics *out)
{
    memset(out, 0, sizeof(*out));
    if (pid <= 0)
        return -1;
    char text[PROC_FILE_MAX_BYTES];
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (read_proc_file(pid, "stat", text, sizeof(text)) != 0 ||
        process_metrics_parse_stat(text, ticks > 0 ? (uint64_t)ticks : 100, page > 0 ? (uint64_t)page : 4096, boot_unix_ns(),
                                   out) != 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    /* prlimit() costs a third of reading /proc/<pid>/limits; it needs the caller to have the
     * target's credentials, which a worker has for its siblings and the master (same user). */
    struct rlimit limit;
    if (prlimit(pid, RLIMIT_NOFILE, NULL, &limit) == 0)
        out->max_fds = limit.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)limit.rlim_cur;
    else if (read_proc_file(pid, "limits", text, sizeof(text)) == 0)
        process_metrics_parse_limits(text, &out->max_fds);
    out->open_fds = count_open_fds(pid);
    return 0;
}
