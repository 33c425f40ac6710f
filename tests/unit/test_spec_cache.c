/* Unit tests for spec_cache.h: answers are those of distribution_parse, whatever the cache holds. */
#include <string.h>

#include "spec_cache.h"
#include "unit.h"

static int parse(struct spec_cache *cache, struct distribution *d, enum distribution_unit unit, const char *text, uint64_t max)
{
    char err[DISTRIBUTION_ERROR_BYTES];
    return spec_cache_parse(cache, d, unit, text, strlen(text), max, err, sizeof(err));
}

static void test_hits_give_what_a_parse_gives(void)
{
    static struct spec_cache cache;
    struct distribution plain, cached;
    const char *text = "lognormal:p50=10ms,p99=50ms";
    CHECK(parse(NULL, &plain, DISTRIBUTION_NS, text, 60000000000ull) == 0);
    for (int round = 0; round < 3; round++) { /* a miss, then hits */
        memset(&cached, 0xa5, sizeof(cached));
        CHECK(parse(&cache, &cached, DISTRIBUTION_NS, text, 60000000000ull) == 0);
        CHECK(distribution_equal(&plain, &cached));
    }
}

static void test_unit_and_max_are_part_of_the_key(void)
{
    static struct spec_cache cache;
    struct distribution d;
    CHECK(parse(&cache, &d, DISTRIBUTION_NS, "500", 60000000000ull) == 0 && d.items[0].a == 500000000ull);
    CHECK(parse(&cache, &d, DISTRIBUTION_STATUS, "500", 599) == 0 && d.items[0].a == 500); /* same text, other unit */
    CHECK(parse(&cache, &d, DISTRIBUTION_BYTES, "500", 1000) == 0 && d.items[0].a == 500);
    CHECK(parse(&cache, &d, DISTRIBUTION_BYTES, "500", 100) == -1); /* same text and unit, a lower max: refused */
    CHECK(parse(&cache, &d, DISTRIBUTION_NS, "500", 60000000000ull) == 0 && d.items[0].a == 500000000ull);
}

static void test_refusals_are_not_kept_and_entries_rotate(void)
{
    static struct spec_cache cache;
    struct distribution d;
    char err[DISTRIBUTION_ERROR_BYTES];
    for (int round = 0; round < 2; round++) {
        err[0] = 0;
        CHECK(spec_cache_parse(&cache, &d, DISTRIBUTION_NS, "lognorm:1", 9, 60000000000ull, err, sizeof(err)) == -1);
        CHECK(strstr(err, "unknown distribution") != NULL); /* explained every time */
    }
    /* more distinct specs than entries: each still parses right after being pushed out */
    const char *texts[] = {"1ms", "2ms", "3ms", "4ms", "5ms", "6ms", "1ms", "6ms"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct distribution plain;
        CHECK(parse(NULL, &plain, DISTRIBUTION_NS, texts[i], 60000000000ull) == 0);
        CHECK(parse(&cache, &d, DISTRIBUTION_NS, texts[i], 60000000000ull) == 0 && distribution_equal(&plain, &d));
    }
    /* a text longer than an entry holds is parsed, not kept */
    char long_text[SPEC_CACHE_TEXT_MAX_BYTES + 20];
    memset(long_text, ' ', sizeof(long_text));
    memcpy(long_text, "7ms", 3);
    CHECK(spec_cache_parse(&cache, &d, DISTRIBUTION_NS, long_text, sizeof(long_text), 60000000000ull, err, sizeof(err)) == 0 &&
          d.items[0].a == 7000000ull);
}

int main(void)
{
    RUN(test_hits_give_what_a_parse_gives);
    RUN(test_unit_and_max_are_part_of_the_key);
    RUN(test_refusals_are_not_kept_and_entries_rotate);
    return unit_finish();
}
