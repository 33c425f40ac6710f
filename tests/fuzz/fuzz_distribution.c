/* libFuzzer harness: distribution specs from arbitrary bytes. The first byte picks the unit (delay,
 * status, size) and the caller's maximum; the rest is the spec. A spec that parses is drawn from 100
 * times (every value within 0..max, a status within 100..599, or the default), described, and the
 * description parses back to an equal spec and describes to the same text. A refusal is one
 * printable line that fits the buffer. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "distribution.h"
#include "duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t maxima[4] = {60ull * 1000000000ull, 1000000ull, DURATION_MAX_NS, UINT64_MAX};
    if (size < 1)
        return 0;
    enum distribution_unit unit = (enum distribution_unit)(data[0] % 3);
    uint64_t max = maxima[(data[0] >> 2) & 3];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    struct distribution d;
    char err[DISTRIBUTION_ERROR_BYTES];
    if (distribution_parse(&d, unit, text, len, max, err, sizeof(err)) != 0) {
        size_t n = strlen(err);
        assert(n > 0 && n < sizeof(err) - 1 && d.count == 0);
        for (size_t i = 0; i < n; i++)
            assert(err[i] >= 0x20 && err[i] <= 0x7e);
        return 0;
    }
    assert(d.count >= 1 && d.count <= DISTRIBUTION_MAX_ITEMS);
    uint64_t limit = unit == DISTRIBUTION_STATUS ? 599 : max < DISTRIBUTION_VALUE_LIMIT ? max : DISTRIBUTION_VALUE_LIMIT;
    assert(d.max == limit);

    struct prng rng;
    prng_seed(&rng, size, data[0] & 3);
    const uint64_t dflt = 1ull << 62; /* outside every range: only the rest weight gives it */
    for (int i = 0; i < 100; i++) {
        uint64_t v = distribution_sample(&d, &rng, dflt);
        if (v == dflt) {
            assert(d.rest_ppm > 0);
            continue;
        }
        assert(v <= limit);
        if (unit == DISTRIBUTION_STATUS)
            assert(v >= 100);
    }

    char text1[DISTRIBUTION_DESCRIBE_BYTES], text2[DISTRIBUTION_DESCRIBE_BYTES];
    size_t n1 = distribution_describe(&d, text1, sizeof(text1));
    assert(n1 < sizeof(text1) && n1 == strlen(text1));
    struct distribution again;
    int rc = distribution_parse(&again, unit, text1, n1, max, err, sizeof(err));
    assert(rc == 0);
    assert(distribution_equal(&d, &again));
    size_t n2 = distribution_describe(&again, text2, sizeof(text2));
    assert(n1 == n2 && memcmp(text1, text2, n1) == 0);
    return 0;
}
