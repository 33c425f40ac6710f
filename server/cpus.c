#include "cpus.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned cpus_budget_combine(unsigned affinity_count, uint64_t quota_us, uint64_t period_us)
{
    unsigned count = affinity_count < 1 ? 1 : affinity_count;
    if (quota_us != 0 && period_us != 0) {
        uint64_t by_quota = (quota_us + period_us - 1) / period_us; /* rounded up */
        if (by_quota < 1)
            by_quota = 1;
        if (by_quota < count)
            count = (unsigned)by_quota;
    }
    return count;
}

int cpus_parse_cpu_max(const char *text, uint64_t *quota_us, uint64_t *period_us)
{
    char quota[32];
    unsigned long long period;
    if (sscanf(text, "%31s %llu", quota, &period) != 2 || period == 0)
        return -1;
    *period_us = period;
    if (strcmp(quota, "max") == 0) {
        *quota_us = 0;
        return 0;
    }
    char *end;
    unsigned long long q = strtoull(quota, &end, 10);
    if (*end != '\0' || q == 0)
        return -1;
    *quota_us = q;
    return 0;
}

static int read_small_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0 ? 0 : -1;
}

/* The cgroup v2 path of this process ("0::/path" in /proc/self/cgroup), or "" */
static void cgroup_v2_path(char *out, size_t size)
{
    char text[4096];
    out[0] = '\0';
    if (read_small_file("/proc/self/cgroup", text, sizeof(text)) != 0)
        return;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        if (strncmp(line, "0::", 3) == 0)
            snprintf(out, size, "%s", line + 3);
}

/* The CFS quota of this process's cgroup, v2 first, then v1; 0 when there is none. */
static void read_quota(uint64_t *quota_us, uint64_t *period_us)
{
    char path[4200], rel[4096], text[128];
    *quota_us = *period_us = 0;
    cgroup_v2_path(rel, sizeof(rel));
    /* inside a container's cgroup namespace the path is "/"; on a host it is the service's */
    snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", strcmp(rel, "/") == 0 ? "" : rel);
    if (read_small_file(path, text, sizeof(text)) == 0 && cpus_parse_cpu_max(text, quota_us, period_us) == 0)
        return;
    if (read_small_file("/sys/fs/cgroup/cpu.max", text, sizeof(text)) == 0 && cpus_parse_cpu_max(text, quota_us, period_us) == 0)
        return;
    char q[64], p[64];
    const char *dirs[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dirs[i]);
        if (read_small_file(path, q, sizeof(q)) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dirs[i]);
        if (read_small_file(path, p, sizeof(p)) != 0)
            continue;
        long long quota = strtoll(q, NULL, 10), period = strtoll(p, NULL, 10);
        if (quota > 0 && period > 0) { /* -1: no quota */
            *quota_us = (uint64_t)quota;
            *period_us = (uint64_t)period;
        }
        return;
    }
}

void cpus_budget_read(struct cpus_budget *out)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1)
        online = 1;
    cpu_set_t set;
    unsigned affinity = (unsigned)online;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        affinity = (unsigned)CPU_COUNT(&set);
    uint64_t quota_us, period_us;
    read_quota(&quota_us, &period_us);
    out->count = cpus_budget_combine(affinity, quota_us, period_us);
    if (quota_us != 0 && out->count < affinity)
        snprintf(out->source, sizeof(out->source), "cgroup CPU quota %.2f CPUs, rounded up",
                 (double)quota_us / (double)period_us);
    else
        snprintf(out->source, sizeof(out->source), "CPU affinity: %u of %ld online", affinity, online);
}
