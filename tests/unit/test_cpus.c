/* Unit tests for cpus: combining the affinity count with a CFS quota, and cgroup v2 cpu.max lines. */
#include "cpus.h"
#include "unit.h"

static void test_combine(void)
{
    CHECK(cpus_budget_combine(96, 0, 0) == 96);              /* no quota: affinity */
    CHECK(cpus_budget_combine(16, 0, 100000) == 16);
    CHECK(cpus_budget_combine(96, 400000, 100000) == 4);     /* a 4-CPU limit on a 96-CPU host */
    CHECK(cpus_budget_combine(96, 250000, 100000) == 3);     /* 2.5 CPUs rounds up */
    CHECK(cpus_budget_combine(2, 800000, 100000) == 2);      /* quota above affinity: affinity */
    CHECK(cpus_budget_combine(8, 10000, 100000) == 1);       /* a tenth of a CPU is still one worker */
    CHECK(cpus_budget_combine(0, 0, 0) == 1);
}

static void test_parse_cpu_max(void)
{
    uint64_t q = 1, p = 1;
    CHECK(cpus_parse_cpu_max("max 100000\n", &q, &p) == 0 && q == 0 && p == 100000);
    CHECK(cpus_parse_cpu_max("250000 100000\n", &q, &p) == 0 && q == 250000 && p == 100000);
    CHECK(cpus_parse_cpu_max("", &q, &p) == -1);
    CHECK(cpus_parse_cpu_max("max", &q, &p) == -1);
    CHECK(cpus_parse_cpu_max("12x 100000", &q, &p) == -1);
    CHECK(cpus_parse_cpu_max("100 0", &q, &p) == -1);
}

static void test_read_is_sane(void)
{
    struct cpus_budget b;
    cpus_budget_read(&b);
    CHECK(b.count >= 1);
    CHECK(b.source[0] != '\0');
}

int main(void)
{
    RUN(test_combine);
    RUN(test_parse_cpu_max);
    RUN(test_read_is_sane);
    return unit_finish();
}
