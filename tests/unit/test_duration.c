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
              {"86400s", 86400000000000ull}, {"0.0004us", 0}, {"0.0006us", 1}};
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
    CHECK(duration_parse_wait_ms("25/x", 2, &ns) == 0 && ns == 25000000);
}

static void test_wait_ms(void)
{
    uint64_t ns;
    CHECK(duration_parse_wait_ms("0", 1, &ns) == 0 && ns == 0);
    CHECK(duration_parse_wait_ms("60000", 5, &ns) == 0 && ns == 60000000000ull);
    CHECK(duration_parse_wait_ms("", 0, &ns) == -1);
    CHECK(duration_parse_wait_ms("1.5", 3, &ns) == -1);
    CHECK(duration_parse_wait_ms("-1", 2, &ns) == -1);
    CHECK(duration_parse_wait_ms("999999999999", 12, &ns) == -1); /* above one day */
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

int main(void)
{
    RUN(test_units_and_decimals);
    RUN(test_refusals);
    RUN(test_length_is_respected);
    RUN(test_wait_ms);
    RUN(test_sizes);
    RUN(test_format_round_trips);
    return unit_finish();
}
