/* process_metrics: the standard process_* figures of any process of ours, read from /proc at scrape
 * time (Linux only, as the rest of the server).
 *
 * A worker answering a scrape reads them for every live process of the server (its siblings and the
 * master), so they cost nothing between scrapes and are as fresh as the scrape. All processes run
 * as the same user, which is what reading another process's /proc/<pid>/fd needs. A read costs a few
 * open/read/close calls on procfs (tens of microseconds per process, measured in the report of the
 * change that added it); open descriptors are counted with one stat() where the kernel reports the
 * count as the directory's size (Linux 6.2 and later), else by listing the directory, which costs
 * more with tens of thousands of connections open. */
#ifndef MOCKUPSTREAM_PROCESS_METRICS_H
#define MOCKUPSTREAM_PROCESS_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct process_metrics {
    uint64_t cpu_ns;                /* user + system CPU time (clock-tick resolution, 10 ms usually) */
    uint64_t resident_memory_bytes; /* resident set size */
    uint64_t virtual_memory_bytes;  /* address space size */
    uint64_t open_fds;              /* descriptors open now */
    uint64_t max_fds;               /* soft RLIMIT_NOFILE; 0 if unlimited or unknown */
    uint64_t start_unix_ns;         /* start time since the Unix epoch (clock-tick resolution) */
};

/* Reads the figures of process `pid` now. Returns 0, or -1 if the process is gone or /proc cannot
 * be read (then *out is zeroed). A figure that alone cannot be read is left 0. */
int process_metrics_read(pid_t pid, struct process_metrics *out);

/* Parses the contents of /proc/<pid>/stat into cpu_ns, resident_memory_bytes, virtual_memory_bytes
 * and start_unix_ns, given the clock tick rate, the page size and the boot time in Unix ns. Returns 0
 * or -1 if the text is malformed. Exposed for tests. */
int process_metrics_parse_stat(const char *text, uint64_t ticks_per_second, uint64_t page_bytes, uint64_t boot_unix_ns,
                               struct process_metrics *out);

/* Parses the soft "Max open files" limit out of the contents of /proc/<pid>/limits: 0 and the limit
 * in *max_fds (0 for "unlimited"), or -1 if there is no such line. Exposed for tests. */
int process_metrics_parse_limits(const char *text, uint64_t *max_fds);

#endif
