/* Unit tests for server/distribution.c and server/prng.c: the PRNG against published vectors,
 * streams, quantiles of 100,000 draws per distribution against the target (3 %), weighted lists
 * (1 percentage point), refusals with their reasons, and parse(describe(d)) == d.
 *
 * Every statistical check draws from a fixed seed, so a run is deterministic (never flaky); the
 * tolerances are also at least 3.5 standard errors of the estimate wide, so another seed passes too
 * (pareto p99 from 100,000 draws has a 2 % standard error: its checks draw 1,000,000). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "distribution.h"
#include "duration.h"
#include "prng.h"
#include "unit.h"

#define MS 1000000ull
#define SECOND 1000000000ull

/* ---- prng -------------------------------------------------------------------------------------- */

static void test_prng_matches_published_vectors(void)
{
    /* xoshiro256** reference output from the state {1, 2, 3, 4} (as in rand_xoshiro's tests) */
    static const uint64_t xoshiro[10] = {11520ull, 0ull, 1509978240ull, 1215971899390074240ull,
                                         1216172134540287360ull, 607988272756665600ull, 16172922978634559625ull,
                                         8476171486693032832ull, 10595114339597558777ull, 2904607092377533576ull};
    struct prng p = {{1, 2, 3, 4}};
    for (int i = 0; i < 10; i++)
        CHECK(prng_next(&p) == xoshiro[i]);
    /* splitmix64 from 0 */
    static const uint64_t splitmix[4] = {0xe220a8397b1dcdafull, 0x6e789e6aa1b965f4ull, 0x06c45d188009454full,
                                         0xf88bb8a8724c81ecull};
    uint64_t x = 0;
    for (int i = 0; i < 4; i++)
        CHECK(prng_splitmix64(&x) == splitmix[i]);
    /* prng_seed is exactly splitmix64 into the state, then `stream` jumps */
    struct prng seeded, manual;
    prng_seed(&seeded, 0, 0);
    x = 0;
    for (int i = 0; i < 4; i++)
        manual.s[i] = prng_splitmix64(&x);
    CHECK(memcmp(&seeded, &manual, sizeof(seeded)) == 0);
    prng_seed(&seeded, 0, 2);
    prng_jump(&manual);
    prng_jump(&manual);
    CHECK(memcmp(&seeded, &manual, sizeof(seeded)) == 0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_prng_streams(void)
{
    enum { N = 100000 };
    uint64_t *first = malloc(N * sizeof(uint64_t));
    struct prng a, b, c;
    prng_seed(&a, 42, 0);
    prng_seed(&b, 42, 0);
    int same = 1;
    for (int i = 0; i < N; i++) {
        first[i] = prng_next(&a);
        same &= first[i] == prng_next(&b);
    }
    CHECK(same); /* the same (seed, stream) gives the same numbers */

    /* Another worker's stream: none of its first 1,000 numbers appears among the first 100,000 of
     * stream 0 (it is not a shifted copy of it), and another seed neither. */
    qsort(first, N, sizeof(uint64_t), cmp_u64);
    prng_seed(&b, 42, 1);
    prng_seed(&c, 43, 0);
    int found_b = 0, found_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t vb = prng_next(&b), vc = prng_next(&c);
        found_b += bsearch(&vb, first, N, sizeof(uint64_t), cmp_u64) != NULL;
        found_c += bsearch(&vc, first, N, sizeof(uint64_t), cmp_u64) != NULL;
    }
    CHECK(found_b == 0);
    CHECK(found_c == 0);
    free(first);

    /* uniform helpers stay in their ranges */
    struct prng r;
    prng_seed(&r, 7, 0);
    int ok = 1;
    for (int i = 0; i < 100000; i++) {
        double u = prng_unit_open(&r);
        ok &= u > 0.0 && u < 1.0;
        ok &= prng_below(&r, 3) < 3;
    }
    CHECK(ok);

    uint64_t s1 = 0, s2 = 0;
    CHECK(prng_os_seed(&s1) == 0 && prng_os_seed(&s2) == 0);
    CHECK(s1 != s2); /* 2^-64 odds of a false failure */
}

/* ---- the normal quantile, against an independent bisection of libm's erfc ------------------------ */

static double normal_cdf(double z)
{
    return 0.5 * erfc(-z / M_SQRT2);
}

static double normal_quantile_by_bisection(double p)
{
    /* the lower tail by its own CDF; the upper by symmetry, where 1 - p is exact enough */
    if (p > 0.5)
        return -normal_quantile_by_bisection(1.0 - p);
    double lo = -40.0, hi = 0.0;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (normal_cdf(mid) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

static void test_normal_quantile_accuracy(void)
{
    static const double ps[] = {1e-300, 1e-16, 1e-9, 1e-4, 0.001, 0.01, 0.02, 0.02425, 0.025, 0.05, 0.1, 0.25,
                                0.4, 0.5, 0.6, 0.75, 0.9, 0.95, 0.975, 0.97575, 0.98, 0.99, 0.999, 1 - 1e-6,
                                1 - 1e-9, 1 - 1e-15};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        double got = distribution_normal_quantile(ps[i]), want = normal_quantile_by_bisection(ps[i]);
        double err = fabs(got - want) / (fabs(want) > 1.0 ? fabs(want) : 1.0);
        CHECK(err < 2e-9);
        if (!(err < 2e-9))
            printf("  p=%g got %.12f want %.12f\n", ps[i], got, want);
    }
    CHECK(fabs(distribution_normal_quantile(0.99) - 2.3263478740408408) < 1e-8);
}

/* ---- quantiles of draws ------------------------------------------------------------------------- */

static int parse_text(struct distribution *d, enum distribution_unit unit, const char *text, uint64_t max)
{
    char err[DISTRIBUTION_ERROR_BYTES];
    int rc = distribution_parse(d, unit, text, strlen(text), max, err, sizeof(err));
    if (rc != 0)
        printf("  '%s': %s\n", text, err);
    return rc;
}

static int within(double got, double want, double tolerance)
{
    return fabs(got - want) <= tolerance * want;
}

/* Draws n values of `text` and checks the sample p50 and p99 against the targets within 3 %, and
 * every draw within 0..max. */
static void check_quantiles(enum distribution_unit unit, const char *text, uint64_t max, double want_p50,
                            double want_p99, size_t n, uint64_t seed)
{
    struct distribution d;
    CHECK(parse_text(&d, unit, text, max) == 0);
    uint64_t *v = malloc(n * sizeof(uint64_t));
    struct prng rng;
    prng_seed(&rng, seed, 0);
    int rests = 0, above = 0;
    for (size_t i = 0; i < n; i++) {
        rests += distribution_draw(&d, &rng, &v[i]) != 0;
        above += v[i] > max;
    }
    CHECK(rests == 0);
    CHECK(above == 0);
    qsort(v, n, sizeof(uint64_t), cmp_u64);
    double p50 = (double)v[n / 2], p99 = (double)v[n * 99 / 100];
    CHECK(within(p50, want_p50, 0.03));
    CHECK(within(p99, want_p99, 0.03));
    printf("  %-34s p50 %10.0f (want %10.0f)  p99 %10.0f (want %10.0f)\n", text, p50, want_p50, p99, want_p99);
    free(v);
}

static void test_quantiles_of_100000_draws(void)
{
    const uint64_t max = 60 * SECOND;
    check_quantiles(DISTRIBUTION_NS, "uniform:5ms..15ms", max, 10e6, 14.9e6, 100000, 1);
    check_quantiles(DISTRIBUTION_NS, "normal:mean=10ms,sd=2ms", max, 10e6, 10e6 + 2e6 * 2.3263478740408408, 100000,
                    2);
    /* heavily truncated: the normal conditioned on >= 0, q(p) = mean + sd z(F0 + (1 - F0) p) */
    double f0 = normal_cdf(-0.5);
    check_quantiles(DISTRIBUTION_NS, "normal:mean=1ms,sd=2ms", max,
                    1e6 + 2e6 * normal_quantile_by_bisection(f0 + (1 - f0) * 0.5),
                    1e6 + 2e6 * normal_quantile_by_bisection(f0 + (1 - f0) * 0.99), 100000, 3);
    check_quantiles(DISTRIBUTION_NS, "lognormal:p50=10ms,p99=50ms", max, 10e6, 50e6, 100000, 4);
    check_quantiles(DISTRIBUTION_NS, "lognormal:p50=5ms,p99=20ms", max, 5e6, 20e6, 100000, 5);
    check_quantiles(DISTRIBUTION_BYTES, "lognormal:p50=4k,p99=16k", 16 << 20, 4096, 16384, 100000, 6);
    check_quantiles(DISTRIBUTION_BYTES, "uniform:0..1m", 16 << 20, 524288, 0.99 * 1048576, 100000, 7);
    /* pareto: P(X > x) = (min / x)^alpha, so q(p) = min (1 - p)^(-1/alpha) */
    check_quantiles(DISTRIBUTION_NS, "pareto:min=5ms,alpha=1.5", max, 5e6 * pow(0.5, -1 / 1.5),
                    5e6 * pow(0.01, -1 / 1.5), 1000000, 8);
    check_quantiles(DISTRIBUTION_NS, "pareto:p50=5ms,p99=100ms", max, 5e6, 100e6, 1000000, 9);
}

static void test_unbounded_shapes_are_capped_at_max(void)
{
    struct distribution d;
    struct prng rng;
    prng_seed(&rng, 11, 0);
    /* p99 = max: about 1 % of draws are max, none above */
    CHECK(parse_text(&d, DISTRIBUTION_NS, "lognormal:p50=10ms,p99=50ms", 50 * MS) == 0);
    int at_max = 0, above = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t v = distribution_sample(&d, &rng, 0);
        at_max += v == 50 * MS;
        above += v > 50 * MS;
    }
    CHECK(above == 0);
    CHECK(at_max > 700 && at_max < 1300);
    /* an extreme tail (alpha 0.01: p99 is 10^200 x min) never overflows: capped */
    CHECK(parse_text(&d, DISTRIBUTION_NS, "pareto:min=1ms,alpha=0.01", 60 * SECOND) == 0);
    above = 0;
    at_max = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t v = distribution_sample(&d, &rng, 0);
        above += v > 60 * SECOND || v < MS;
        at_max += v == 60 * SECOND;
    }
    CHECK(above == 0);
    /* P(X >= 60 s) = (1 ms / 60 s)^0.01 = 89.6 % */
    CHECK(fabs(at_max / 100.0 - 100.0 * pow(1.0 / 60000, 0.01)) <= 1.0);
    /* a caller maximum beyond the limit is lowered to it */
    CHECK(parse_text(&d, DISTRIBUTION_BYTES, "pareto:min=1,alpha=0.01", UINT64_MAX) == 0);
    CHECK(d.max == DISTRIBUTION_VALUE_LIMIT);
    for (int i = 0; i < 1000; i++)
        CHECK(distribution_sample(&d, &rng, 0) <= DISTRIBUTION_VALUE_LIMIT);
    /* the normal, truncated at 0, never piles up at 0 the way a clamp would */
    CHECK(parse_text(&d, DISTRIBUTION_NS, "normal:mean=0,sd=1ms", 60 * SECOND) == 0);
    int zeros = 0;
    for (int i = 0; i < 100000; i++)
        zeros += distribution_sample(&d, &rng, 0) == 0;
    CHECK(zeros < 10); /* P(draw < 0.5 ns) = 2 x 0.5e-6 / sqrt(2 pi) ~ 4e-7 */
}

/* ---- weighted lists ------------------------------------------------------------------------------ */

/* Draws 100,000 values with `dflt` for the rest and checks the share of each of the n listed values
 * (the default among them) within one percentage point, and that nothing else comes out. */
static void check_shares(enum distribution_unit unit, const char *text, uint64_t max, uint64_t dflt,
                         const uint64_t *values, const double *percents, size_t n, uint64_t seed)
{
    enum { DRAWS = 100000 };
    struct distribution d;
    CHECK(parse_text(&d, unit, text, max) == 0);
    struct prng rng;
    prng_seed(&rng, seed, 0);
    size_t counts[8] = {0}, other = 0;
    for (int i = 0; i < DRAWS; i++) {
        uint64_t v = distribution_sample(&d, &rng, dflt);
        size_t k = 0;
        while (k < n && values[k] != v)
            k++;
        if (k < n)
            counts[k]++;
        else
            other++;
    }
    for (size_t k = 0; k < n; k++) {
        double share = 100.0 * (double)counts[k] / DRAWS;
        CHECK(fabs(share - percents[k]) <= 1.0);
        printf("  %-40s %llu: %6.2f %% (want %6.2f %%)\n", text, (unsigned long long)values[k], share, percents[k]);
    }
    CHECK(other == 0);
}

static void test_weighted_lists(void)
{
    {
        const uint64_t v[] = {150000, 2 * MS, 7 * MS}; /* 7 ms: the default */
        const double pc[] = {10, 5, 85};
        check_shares(DISTRIBUTION_NS, "150us:10,2ms:5", 60 * SECOND, 7 * MS, v, pc, 3, 21);
    }
    {
        const uint64_t v[] = {503, 500, 200};
        const double pc[] = {5, 0.5, 94.5};
        check_shares(DISTRIBUTION_STATUS, "503:5,500:0.5", 0, 200, v, pc, 3, 22);
    }
    {
        const uint64_t v[] = {1024, 65536, 13};
        const double pc[] = {50, 50, 0}; /* no rest: the default never comes out */
        check_shares(DISTRIBUTION_BYTES, "1k:50,64k:50", 1 << 20, 13, v, pc, 3, 23);
    }
    {
        const uint64_t v[] = {503, 200};
        const double pc[] = {50, 50};
        check_shares(DISTRIBUTION_STATUS, "503:50", 0, 200, v, pc, 2, 24);
    }
    {
        /* uniform includes both ends, each integer equally likely */
        const uint64_t v[] = {1, 2, 3};
        const double pc[] = {100.0 / 3, 100.0 / 3, 100.0 / 3};
        check_shares(DISTRIBUTION_BYTES, "uniform:1..3", 1 << 20, 13, v, pc, 3, 26);
        const uint64_t one[] = {5 * MS};
        const double all[] = {100};
        check_shares(DISTRIBUTION_NS, "uniform:5ms..5ms", 60 * SECOND, 7, one, all, 1, 27);
    }
    /* a mix: 90 % exactly 2 ms, 10 % lognormal (which is never exactly 2 ms... nearly: count it) */
    struct distribution d;
    CHECK(parse_text(&d, DISTRIBUTION_NS, "2ms:90,lognormal:p50=5ms,p99=20ms:10", 60 * SECOND) == 0);
    struct prng rng;
    prng_seed(&rng, 25, 0);
    int fixed = 0, rest = 0, above_3ms = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t v;
        if (distribution_draw(&d, &rng, &v) != 0)
            rest++;
        else if (v == 2 * MS)
            fixed++;
        else
            above_3ms += v > 3 * MS;
    }
    CHECK(rest == 0);
    CHECK(fabs(fixed / 1000.0 - 90.0) <= 1.0);
    /* P(lognormal(5ms, 20ms) > 3 ms) = 1 - Phi(ln(3/5) / sigma), sigma = ln 4 / z99 */
    double share_above = 1.0 - normal_cdf(log(0.6) / (log(4.0) / 2.3263478740408408));
    CHECK(fabs(above_3ms / 1000.0 - 10.0 * share_above) <= 1.0);
}

static void test_same_seed_same_sequence(void)
{
    struct distribution d;
    CHECK(parse_text(&d, DISTRIBUTION_NS, "1ms:30,lognormal:p50=5ms,p99=20ms:40,uniform:1ms..2ms:20", 60 * SECOND) ==
          0);
    struct prng a, b, other_worker, other_seed;
    prng_seed(&a, 1234, 3);
    prng_seed(&b, 1234, 3);
    prng_seed(&other_worker, 1234, 4);
    prng_seed(&other_seed, 1235, 3);
    int same = 1, equal_worker = 0, equal_seed = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = distribution_sample(&d, &a, 7), y = distribution_sample(&d, &b, 7);
        same &= x == y;
        equal_worker += x == distribution_sample(&d, &other_worker, 7);
        equal_seed += x == distribution_sample(&d, &other_seed, 7);
    }
    CHECK(same);
    /* only the fixed 1 ms and the default 7 ms can coincide: (0.3^2 + 0.1^2) of draws ~ 100 */
    CHECK(equal_worker < 200);
    CHECK(equal_seed < 200);
}

static void test_fixed_and_empty_draw_nothing(void)
{
    struct distribution d;
    struct prng rng, before;
    prng_seed(&rng, 5, 0);
    before = rng;
    uint64_t v = 0;
    CHECK(parse_text(&d, DISTRIBUTION_NS, "25ms", 60 * SECOND) == 0);
    CHECK(distribution_is_fixed(&d, &v) && v == 25 * MS);
    CHECK(distribution_sample(&d, &rng, 0) == 25 * MS);
    CHECK(memcmp(&rng, &before, sizeof(rng)) == 0);
    memset(&d, 0, sizeof(d)); /* the empty distribution: always the default */
    CHECK(distribution_draw(&d, &rng, &v) == DISTRIBUTION_REST);
    CHECK(distribution_sample(&d, &rng, 99) == 99);
    CHECK(memcmp(&rng, &before, sizeof(rng)) == 0);
    CHECK(!distribution_is_fixed(&d, &v));
    CHECK(parse_text(&d, DISTRIBUTION_NS, "25ms:50", 60 * SECOND) == 0);
    CHECK(!distribution_is_fixed(&d, &v));
    distribution_set_fixed(&d, DISTRIBUTION_STATUS, 503, 0);
    CHECK(distribution_is_fixed(&d, &v) && v == 503);
    struct distribution parsed;
    CHECK(parse_text(&parsed, DISTRIBUTION_STATUS, "503", 0) == 0);
    CHECK(distribution_equal(&d, &parsed));
}

/* ---- refusals ------------------------------------------------------------------------------------ */

static void test_malformed_inputs_say_why(void)
{
    static const struct {
        enum distribution_unit unit;
        const char *text;
        uint64_t max;
        const char *reason; /* a part of the message */
    } bad[] = {
        {DISTRIBUTION_NS, "", 60 * SECOND, "empty value (allowed: a duration, uniform:, normal:, lognormal:, pareto:, "
                                           "or a weighted list like 1ms:10,5ms:2)"},
        {DISTRIBUTION_NS, "  ", 60 * SECOND, "empty value"},
        {DISTRIBUTION_NS, "lognorm:p50=5ms,p99=20ms", 60 * SECOND,
         "unknown distribution 'lognorm' (allowed: a duration, uniform:, normal:, lognormal:, pareto:, or a weighted "
         "list like 1ms:10,5ms:2)"},
        {DISTRIBUTION_NS, "gamma", 60 * SECOND, "unknown distribution 'gamma'"},
        {DISTRIBUTION_NS, "lognormal", 60 * SECOND, "lognormal needs parameters, e.g. lognormal:p50=10ms,p99=50ms"},
        {DISTRIBUTION_NS, "uniform", 60 * SECOND, "uniform needs parameters, e.g. uniform:5ms..15ms"},
        {DISTRIBUTION_NS, "10xs", 60 * SECOND, "'10xs' is not a duration (allowed: 0..60s as a number with us, ms or s"},
        {DISTRIBUTION_NS, "-5ms", 60 * SECOND, "'-5ms' is not a duration"},
        {DISTRIBUTION_NS, "70s", 60 * SECOND, "'70s' is above the maximum 60s (allowed: 0..60s)"},
        {DISTRIBUTION_NS, "150us:10,2ms", 60 * SECOND,
         "'2ms' has no weight (in a list every item is value:percent, e.g. 1ms:10,5ms:2)"},
        {DISTRIBUTION_NS, "150us,2ms:5", 60 * SECOND, "'150us' has no weight"},
        {DISTRIBUTION_NS, "lognormal:p50=5ms,p99=20ms,5ms:20", 60 * SECOND,
         "'lognormal:p50=5ms,p99=20ms' has no weight"},
        {DISTRIBUTION_NS, "1ms:60,2ms:50", 60 * SECOND,
         "weights add up to 110 % (allowed: at most 100; the rest goes to the default)"},
        {DISTRIBUTION_NS, "1ms:60,2ms:40.0001", 60 * SECOND, "weights add up to 100.0001 %"},
        {DISTRIBUTION_NS, "1ms:10.00001", 60 * SECOND,
         "item 1: weight '10.00001' is not a percentage (allowed: 0..100 with up to 4 decimals, e.g. 503:0.5)"},
        {DISTRIBUTION_NS, "1ms:-1", 60 * SECOND, "weight '-1' is not a percentage"},
        {DISTRIBUTION_NS, "1ms:101", 60 * SECOND, "weight '101' is not a percentage"},
        {DISTRIBUTION_NS, "1ms:", 60 * SECOND, "weight '' is not a percentage"},
        {DISTRIBUTION_NS, "1ms:5%", 60 * SECOND, "weight '5%' is not a percentage"},
        {DISTRIBUTION_NS, "1ms:5:6", 60 * SECOND, "weight '5:6' is not a percentage"},
        {DISTRIBUTION_NS, "1ms:1,2ms:1,3ms:1,4ms:1,5ms:1,6ms:1,7ms:1,8ms:1,9ms:1,10ms:1,11ms:1,12ms:1,13ms:1,14ms:1,"
                          "15ms:1,16ms:1,17ms:1",
         60 * SECOND, "more than 16 items (at most 16)"},
        {DISTRIBUTION_NS, "1ms:10,,2ms:5", 60 * SECOND, "item 2 is empty"},
        {DISTRIBUTION_NS, "1ms:10,", 60 * SECOND, "item 2 is empty"},
        {DISTRIBUTION_NS, ":10", 60 * SECOND, "item 1 is empty"},
        {DISTRIBUTION_NS, "5ms 10ms", 60 * SECOND, "unexpected '10ms' after item 1"},
        {DISTRIBUTION_NS, "5ms;10ms", 60 * SECOND, "unexpected ';10ms' after item 1"},
        {DISTRIBUTION_NS, "uniform:15ms..5ms", 60 * SECOND,
         "uniform lo '15ms' is above hi '5ms' (write uniform:lo..hi, e.g. uniform:5ms..15ms)"},
        {DISTRIBUTION_NS, "uniform:5ms-15ms", 60 * SECOND, "uniform needs lo..hi, e.g. uniform:5ms..15ms"},
        {DISTRIBUTION_NS, "uniform:5ms..70s", 60 * SECOND, "uniform hi '70s' is above the maximum 60s"},
        {DISTRIBUTION_NS, "uniform:5ms..", 60 * SECOND, "uniform hi '' is not a duration"},
        {DISTRIBUTION_NS, "normal:mean=10ms", 60 * SECOND, "normal needs mean= and sd=, e.g. normal:mean=10ms,sd=2ms"},
        {DISTRIBUTION_NS, "normal:mean=10ms,sd=0", 60 * SECOND, "normal: sd must be above 0"},
        {DISTRIBUTION_NS, "normal:mean=10ms,sd=2ms,sd=3ms", 60 * SECOND, "normal: sd given twice"},
        {DISTRIBUTION_NS, "normal:mean=10ms,variance=2ms", 60 * SECOND,
         "normal: unknown parameter 'variance' (allowed: mean, sd; e.g. normal:mean=10ms,sd=2ms)"},
        {DISTRIBUTION_NS, "normal:10ms,2ms", 60 * SECOND, "normal: expected name=value at '10ms'"},
        {DISTRIBUTION_NS, "normal:mean=10ms;2ms", 60 * SECOND, "normal: expected name=value after ';'"},
        {DISTRIBUTION_NS, "normal:mean=10ms,sd=1x", 60 * SECOND, "normal sd '1x' is not a duration"},
        {DISTRIBUTION_NS, "normal:mean=10ms:5,sd=1ms", 60 * SECOND, "normal needs mean= and sd="},
        {DISTRIBUTION_NS, "lognormal:p50=50ms,p99=10ms", 60 * SECOND,
         "lognormal: p99 must be above p50 (e.g. lognormal:p50=10ms,p99=50ms)"},
        {DISTRIBUTION_NS, "lognormal:p50=10ms,p99=10ms", 60 * SECOND, "p99 must be above p50"},
        {DISTRIBUTION_NS, "lognormal:p50=0,p99=10ms", 60 * SECOND, "lognormal: p50 must be above 0"},
        {DISTRIBUTION_NS, "lognormal:p50=10ms,p99=70s", 60 * SECOND,
         "lognormal p99 '70s' is above the maximum 60s (allowed: 0..60s)"},
        {DISTRIBUTION_NS, "lognormal:mean=10ms,sd=2ms", 60 * SECOND, "lognormal: unknown parameter 'mean'"},
        {DISTRIBUTION_NS, "pareto:min=5ms", 60 * SECOND, "pareto needs min= and alpha=, or p50= and p99="},
        {DISTRIBUTION_NS, "pareto:min=5ms,p99=20ms", 60 * SECOND, "pareto needs min= and alpha=, or p50= and p99="},
        {DISTRIBUTION_NS, "pareto:min=0,alpha=1.5", 60 * SECOND, "pareto: min must be above 0"},
        {DISTRIBUTION_NS, "pareto:min=5ms,alpha=0", 60 * SECOND,
         "pareto: alpha '0' is not a number 0.01..100 with up to 4 decimals"},
        {DISTRIBUTION_NS, "pareto:min=5ms,alpha=abc", 60 * SECOND, "alpha 'abc' is not a number"},
        {DISTRIBUTION_NS, "pareto:min=5ms,alpha=101", 60 * SECOND, "alpha '101' is not a number"},
        {DISTRIBUTION_NS, "\x01\n5ms", 60 * SECOND, "'??5ms' is not a duration"},
        {DISTRIBUTION_NS, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 60 * SECOND,
         "unknown distribution 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'"},
        {DISTRIBUTION_STATUS, "600", 0, "'600' is not a status code (allowed: 200..599"},
        {DISTRIBUTION_STATUS, "99", 0, "'99' is not a status code"},
        {DISTRIBUTION_STATUS, "2xx", 0, "'2xx' is not a status code"},
        {DISTRIBUTION_STATUS, "0200", 0, "'0200' is not a status code"},
        {DISTRIBUTION_STATUS, "uniform:500..503", 0,
         "distributions are for delays and sizes (allowed: a status code 200..599, or a weighted list like "
         "503:5,500:1)"},
        {DISTRIBUTION_STATUS, "503:5,500", 0, "'500' has no weight (in a list every item is value:percent, e.g. "
                                              "503:5,500:1)"},
        {DISTRIBUTION_BYTES, "1kb", 16 << 20, "'1kb' is not a size (allowed: 0..16m bytes, with an optional k, m, g"},
        {DISTRIBUTION_BYTES, "32m", 16 << 20, "'32m' is above the maximum 16m (allowed: 0..16m)"},
        {DISTRIBUTION_BYTES, "1.5k", 16 << 20, "'1.5k' is not a size"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct distribution d;
        char err[DISTRIBUTION_ERROR_BYTES];
        memset(err, 0, sizeof(err));
        d.count = 9;
        int rc = distribution_parse(&d, bad[i].unit, bad[i].text, strlen(bad[i].text), bad[i].max, err, sizeof(err));
        int ok = rc == -1 && d.count == 0 && strstr(err, bad[i].reason) != NULL && strchr(err, '\n') == NULL &&
                 strlen(err) < sizeof(err) - 1;
        CHECK(ok);
        if (!ok)
            printf("  '%s' -> %d: %s\n     want: %s\n", bad[i].text, rc, err, bad[i].reason);
    }
    /* a message is cut to the caller's buffer, never past it */
    struct distribution d;
    char small[16];
    memset(small, 'x', sizeof(small));
    CHECK(distribution_parse(&d, DISTRIBUTION_NS, "bogus:1", 7, 60 * SECOND, small, 12) == -1);
    CHECK(strlen(small) == 11 && small[12] == 'x');
    CHECK(distribution_parse(&d, DISTRIBUTION_NS, "bogus:1", 7, 60 * SECOND, NULL, 0) == -1);
}

static void test_length_is_respected(void)
{
    struct distribution d;
    char err[DISTRIBUTION_ERROR_BYTES];
    uint64_t v;
    CHECK(distribution_parse(&d, DISTRIBUTION_NS, "25msGARBAGE", 4, 60 * SECOND, err, sizeof(err)) == 0);
    CHECK(distribution_is_fixed(&d, &v) && v == 25 * MS);
    CHECK(distribution_parse(&d, DISTRIBUTION_NS, "lognormal:p50=5ms,p99=20ms&x", 26, 60 * SECOND, err,
                             sizeof(err)) == 0);
    CHECK(distribution_parse(&d, DISTRIBUTION_STATUS, "503:5\0", 6, 0, err, sizeof(err)) == -1);
}

/* ---- describe and round trips -------------------------------------------------------------------- */

static void test_round_trips(void)
{
    static const struct {
        enum distribution_unit unit;
        const char *text;
        const char *canonical;
    } cases[] = {
        {DISTRIBUTION_NS, "25ms", "25ms"},
        {DISTRIBUTION_NS, "25", "25ms"},
        {DISTRIBUTION_NS, "0.025s", "25ms"},
        {DISTRIBUTION_NS, "0", "0"},
        {DISTRIBUTION_NS, "1.234567ms", "1.234567ms"},
        {DISTRIBUTION_NS, "2.000000001s", "2.000000001s"},
        {DISTRIBUTION_NS, "0.001us", "0.001us"},
        {DISTRIBUTION_NS, "25ms:100", "25ms"},
        {DISTRIBUTION_NS, "25ms:0", "25ms:0"},
        {DISTRIBUTION_NS, "150us:10,2ms:5", "150us:10,2ms:5"},
        {DISTRIBUTION_NS, " 150us:10 ,\t2ms:5.50 ", "150us:10,2ms:5.5"},
        {DISTRIBUTION_NS, "1ms:0.0001", "1ms:0.0001"},
        {DISTRIBUTION_NS, "uniform:5ms..15ms", "uniform:5ms..15ms"},
        {DISTRIBUTION_NS, "uniform:0.5..1.5", "uniform:500us..1.5ms"},
        {DISTRIBUTION_NS, "normal:sd=2ms,mean=10ms", "normal:mean=10ms,sd=2ms"},
        {DISTRIBUTION_NS, "LogNormal:P50=5ms;P99=20ms", "lognormal:p50=5ms,p99=20ms"},
        {DISTRIBUTION_NS, "lognormal:p50=5ms, p99=20ms", "lognormal:p50=5ms,p99=20ms"},
        {DISTRIBUTION_NS, "2ms:90,lognormal:p50=5ms;p99=20ms:10", "2ms:90,lognormal:p50=5ms,p99=20ms:10"},
        {DISTRIBUTION_NS, "2ms:90,lognormal:p50=5ms,p99=20ms:10", "2ms:90,lognormal:p50=5ms,p99=20ms:10"},
        {DISTRIBUTION_NS, "lognormal:p50=5ms,p99=20ms:10,2ms:90", "lognormal:p50=5ms,p99=20ms:10,2ms:90"},
        {DISTRIBUTION_NS, "normal:mean=1ms,sd=1ms:20,uniform:1ms..2ms:30,pareto:min=1ms,alpha=2:10",
         "normal:mean=1ms,sd=1ms:20,uniform:1ms..2ms:30,pareto:min=1ms,alpha=2:10"},
        {DISTRIBUTION_NS, "pareto:alpha=1.50,min=5ms", "pareto:min=5ms,alpha=1.5"},
        {DISTRIBUTION_NS, "pareto:p50=5ms,p99=100ms", "pareto:p50=5ms,p99=100ms"},
        {DISTRIBUTION_STATUS, "503", "503"},
        {DISTRIBUTION_STATUS, "503:5,500:0.5", "503:5,500:0.5"},
        {DISTRIBUTION_BYTES, "1024", "1k"},
        {DISTRIBUTION_BYTES, "1000", "1000"},
        {DISTRIBUTION_BYTES, "65536:10,1MiB:0.25", "64k:10,1m:0.25"},
        {DISTRIBUTION_BYTES, "lognormal:p50=1k,p99=64k", "lognormal:p50=1k,p99=64k"},
        {DISTRIBUTION_BYTES, "uniform:0..16m", "uniform:0..16m"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t max = cases[i].unit == DISTRIBUTION_NS ? 60 * SECOND : 16 << 20;
        struct distribution d, again;
        char text[DISTRIBUTION_DESCRIBE_BYTES];
        CHECK(parse_text(&d, cases[i].unit, cases[i].text, max) == 0);
        size_t n = distribution_describe(&d, text, sizeof(text));
        CHECK(n == strlen(text));
        CHECK(strcmp(text, cases[i].canonical) == 0);
        if (strcmp(text, cases[i].canonical) != 0)
            printf("  '%s' -> '%s', want '%s'\n", cases[i].text, text, cases[i].canonical);
        CHECK(parse_text(&again, cases[i].unit, text, max) == 0);
        CHECK(distribution_equal(&d, &again));
    }
}

/* The longest canonical text fits DISTRIBUTION_DESCRIBE_BYTES; a short buffer is cut, NUL-ended. */
static void test_describe_bounds(void)
{
    char spec[4096] = "";
    for (int k = 0; k < DISTRIBUTION_MAX_ITEMS; k++)
        strcat(spec, k ? ",lognormal:p50=86399.999999998s,p99=86399.999999999s:6.2501"
                       : "lognormal:p50=86399.999999998s,p99=86399.999999999s:0.0001");
    struct distribution d;
    CHECK(parse_text(&d, DISTRIBUTION_NS, spec, DURATION_MAX_NS) == 0);
    char text[DISTRIBUTION_DESCRIBE_BYTES];
    size_t n = distribution_describe(&d, text, sizeof(text));
    CHECK(n < sizeof(text) && strcmp(text, spec) == 0);
    char small[10];
    CHECK(distribution_describe(&d, small, sizeof(small)) == n);
    CHECK(strlen(small) == 9 && memcmp(small, spec, 9) == 0);
    CHECK(distribution_describe(&d, NULL, 0) == n);
    memset(&d, 0, sizeof(d));
    CHECK(distribution_describe(&d, text, sizeof(text)) == 0 && text[0] == '\0');
}

/* A different maximum or a different default weight is a different distribution. */
static void test_equal(void)
{
    struct distribution a, b;
    CHECK(parse_text(&a, DISTRIBUTION_NS, "1ms:10", 60 * SECOND) == 0);
    CHECK(parse_text(&b, DISTRIBUTION_NS, "1ms:10", 30 * SECOND) == 0);
    CHECK(!distribution_equal(&a, &b));
    CHECK(parse_text(&b, DISTRIBUTION_NS, "1ms:10.0", 60 * SECOND) == 0);
    CHECK(distribution_equal(&a, &b));
    CHECK(parse_text(&b, DISTRIBUTION_NS, "1ms:11", 60 * SECOND) == 0);
    CHECK(!distribution_equal(&a, &b));
    CHECK(parse_text(&b, DISTRIBUTION_NS, "uniform:1ms..1ms:10", 60 * SECOND) == 0);
    CHECK(!distribution_equal(&a, &b));
}

int main(void)
{
    RUN(test_prng_matches_published_vectors);
    RUN(test_prng_streams);
    RUN(test_normal_quantile_accuracy);
    RUN(test_quantiles_of_100000_draws);
    RUN(test_unbounded_shapes_are_capped_at_max);
    RUN(test_weighted_lists);
    RUN(test_same_seed_same_sequence);
    RUN(test_fixed_and_empty_draw_nothing);
    RUN(test_malformed_inputs_say_why);
    RUN(test_length_is_respected);
    RUN(test_round_trips);
    RUN(test_describe_bounds);
    RUN(test_equal);
    return unit_finish();
}
