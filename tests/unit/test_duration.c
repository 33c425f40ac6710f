/* Unit tests for server/duration.c. */
#include <string.h>

#include "duration.h"
#include "unit.h"

static int parse(const char *s, uint64_t *ns)
{
    return duration_parse_ns(s, strlen(s), ns);
}

static void test_units_and_decimals(void)
{
    static const struct {
        const char *text;
        uint64_t ns;
    } ok[] = {{"0", 0},           {"10", 10000000},          {"10ms", 10000000},  {"250us", 250000},
              {"1.5ms", 1500000}, {"0.001ms", 1000},         {"2s", 2000000000},  {"1.25s", 1250000000},
              {"1.1ms", 1100000}, {"0.0000001s", 100},       {".5ms", 500000},    {"5.", 5000000},
              {"86400s", 86400000000000ull}, {"0.0004us", 0}, {"0.0006us", 1},
              /* more fraction digits than are kept: once overflowed to 3.9 ms and 77.7 ms */
              {"0.999999999999s", 1000000000}, {"0.99999999999s", 1000000000}, {"1.999999999999s", 2000000000},
              {"0.123456789012345s", 123456789}, {"86399.9999999999999s", 86400000000000ull}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t ns = 12345;
        CHECK(parse(ok[i].text, &ns) == 0);
        CHECK(ns == ok[i].ns);
        if (ns != ok[i].ns)
            printf("  %s -> %llu\n", ok[i].text, (unsigned long long)ns);
    }
}

static void test_refusals(void)
{
    const char *bad[] = {"", "10xs", "-5ms", ".", "ms", "1e3", " 5ms", "5ms ", "5 ms", "+5", "5m", "5mss", "0x10",
                         "99999999999999999999", "86401s", "inf", "nan", "1.2.3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t ns = 777;
        CHECK(parse(bad[i], &ns) == -1);
        CHECK(ns == 777); /* untouched on failure */
    }
}

static void test_length_is_respected(void)
{
    uint64_t ns;
    CHECK(duration_parse_ns("25msGARBAGE", 4, &ns) == 0 && ns == 25000000);
    CHECK(duration_parse_decimal_ms("25/x", 2, &ns) == 0 && ns == 25000000);
}

static void test_sizes(void)
{
    uint64_t b;
    CHECK(size_parse_bytes("13", 2, 100, &b) == 0 && b == 13);
    CHECK(size_parse_bytes("1k", 2, 1 << 20, &b) == 0 && b == 1024);
    CHECK(size_parse_bytes("1M", 2, 1 << 20, &b) == 0 && b == 1 << 20);
    CHECK(size_parse_bytes("1g", 2, 1ull << 30, &b) == 0 && b == 1ull << 30);
    CHECK(size_parse_bytes("2g", 2, 1ull << 30, &b) == -1);
    CHECK(size_parse_bytes("101", 3, 100, &b) == -1);
    CHECK(size_parse_bytes("1kb", 3, 1 << 20, &b) == -1);
    CHECK(size_parse_bytes("1KB", 3, 1 << 20, &b) == -1);
    CHECK(size_parse_bytes("64KiB", 5, 1 << 20, &b) == 0 && b == 65536);
    CHECK(size_parse_bytes("1MiB", 4, 1 << 20, &b) == 0 && b == 1 << 20);
    CHECK(size_parse_bytes("1gib", 4, 1ull << 30, &b) == 0 && b == 1ull << 30);
    CHECK(size_parse_bytes("1GiB", 4, (1ull << 30) - 1, &b) == -1);
    CHECK(size_parse_bytes("1iB", 3, 1 << 20, &b) == -1);
    CHECK(size_parse_bytes("1Ki", 3, 1 << 20, &b) == -1);
    CHECK(size_parse_bytes("1KiBx", 5, 1 << 20, &b) == -1);
    CHECK(size_parse_bytes("k", 1, 1 << 20, &b) == -1);
    CHECK(size_parse_bytes("", 0, 1 << 20, &b) == -1);
}

static void test_format_round_trips(void)
{
    static const struct {
        uint64_t ns;
        const char *text;
    } cases[] = {{0, "0"}, {10000000, "10ms"}, {250000, "250us"}, {1500000000, "1.5s"}, {60000000000ull, "60s"}, {1, "0.001us"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        duration_format(cases[i].ns, buf, sizeof(buf));
        CHECK(strcmp(buf, cases[i].text) == 0);
        uint64_t back;
        CHECK(parse(buf, &back) == 0 && back == cases[i].ns);
    }
}

static void test_decimal_ms(void)
{
    static const struct {
        const char *text;
        uint64_t ns;
    } ok[] = {{"25", 25000000}, {"0.25", 250000}, {"1.5", 1500000}, {"0", 0}, {"0.000001", 1}, {".5", 500000},
              {"86400000", 86400000000000ull}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t ns = 1;
        CHECK(duration_parse_decimal_ms(ok[i].text, strlen(ok[i].text), &ns) == 0 && ns == ok[i].ns);
    }
    const char *bad[] = {"", ".", "1.2.3", "5ms", "1s", "-1", "+1", "1e3", " 1", "86400001", "0x10",
                         "0000000000000000000000001"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t ns = 777;
        CHECK(duration_parse_decimal_ms(bad[i], strlen(bad[i]), &ns) == -1 && ns == 777);
    }
}

/* Exact forms read back to the same value, for values the rounded form cannot carry. */
static void test_exact_formats(void)
{
    static const struct {
        uint64_t ns;
        const char *text;
    } d[] = {{0, "0"}, {1, "0.001us"}, {999, "0.999us"}, {1000, "1us"}, {1234567, "1.234567ms"},
             {10000000, "10ms"}, {2000000001, "2.000000001s"}, {60000000000ull, "60s"},
             {86399999999999ull, "86399.999999999s"}};
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
        char buf[DURATION_FORMAT_EXACT_BYTES];
        duration_format_exact(d[i].ns, buf, sizeof(buf));
        CHECK(strcmp(buf, d[i].text) == 0);
        uint64_t back;
        CHECK(parse(buf, &back) == 0 && back == d[i].ns);
    }
    /* every nanosecond count in a sweep across the units round-trips */
    int all = 1;
    for (uint64_t ns = 1; ns < DURATION_MAX_NS; ns = ns * 3 + 7) {
        char buf[DURATION_FORMAT_EXACT_BYTES];
        uint64_t back;
        all &= parse(duration_format_exact(ns, buf, sizeof(buf)), &back) == 0 && back == ns;
    }
    CHECK(all);
    static const struct {
        uint64_t bytes;
        const char *text;
    } s[] = {{0, "0"}, {1000, "1000"}, {1024, "1k"}, {1536, "1536"}, {65536, "64k"}, {1 << 20, "1m"},
             {3ull << 30, "3g"}, {(1ull << 30) + 1024, "1048577k"}};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        char buf[DURATION_FORMAT_EXACT_BYTES];
        size_format_exact(s[i].bytes, buf, sizeof(buf));
        CHECK(strcmp(buf, s[i].text) == 0);
        uint64_t back;
        CHECK(size_parse_bytes(buf, strlen(buf), 1ull << 40, &back) == 0 && back == s[i].bytes);
    }
}

int main(void)
{
    RUN(test_units_and_decimals);
    RUN(test_refusals);
    RUN(test_length_is_respected);
    RUN(test_sizes);
    RUN(test_format_round_trips);
    RUN(test_decimal_ms);
    RUN(test_exact_formats);
    return unit_finish();
}
