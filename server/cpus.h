/* cpus: how many CPUs this process may really use, for the default number of workers.
 *
 * Online CPUs are the wrong count in a container: `docker run --cpuset-cpus 0-15` on a 96-CPU host
 * leaves the process 16 CPUs (its affinity mask), and a Kubernetes CPU limit becomes a CFS quota
 * (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`). The budget is the smaller of
 * the two, a fractional quota rounded up (a 2.5-CPU limit still spreads work over 3 workers). */
#ifndef MOCKUPSTREAM_CPUS_H
#define MOCKUPSTREAM_CPUS_H

#include <stddef.h>
#include <stdint.h>

struct cpus_budget {
    unsigned count;     /* >= 1 */
    char source[96];    /* where the count came from, for the banner: "CPU affinity: 16 of 96 online" */
};

/* Reads the affinity mask and the cgroup CPU quota of this process. Never fails (falls back to the
 * online CPU count, then 1). */
void cpus_budget_read(struct cpus_budget *out);

/* The pure part, for tests: CPUs allowed by a quota of `quota_us` per `period_us` (quota_us 0: no
 * quota), combined with `affinity_count`. */
unsigned cpus_budget_combine(unsigned affinity_count, uint64_t quota_us, uint64_t period_us);

/* Parses a cgroup v2 `cpu.max` line ("max 100000" or "250000 100000"). Returns 0 with *quota_us 0
 * for "max", or -1 if the text is not of that form. */
int cpus_parse_cpu_max(const char *text, uint64_t *quota_us, uint64_t *period_us);

#endif
