/* libFuzzer harness: fault specs (fault.h) from arbitrary bytes. A spec that parses has 1..5 items of
 * distinct kinds whose weights add up to at most 100 %; 1,000 draws give only its kinds (or none
 * while weight is left); its description parses back to an equal spec and describes to the same
 * text. A refusal is one printable line that fits the buffer, with the spec left empty. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fault_spec spec;
    char err[FAULT_ERROR_BYTES];
    if (fault_spec_parse(&spec, (const char *)data, size, err, sizeof(err)) != 0) {
        size_t n = strlen(err);
        assert(n > 0 && n < sizeof(err) - 1 && spec.count == 0);
        for (size_t i = 0; i < n; i++)
            assert(err[i] >= 0x20 && err[i] <= 0x7e);
        return 0;
    }
    assert(spec.count >= 1 && spec.count <= FAULT_KINDS);
    uint64_t sum_ppm = 0;
    unsigned seen = 0;
    for (size_t i = 0; i < spec.count; i++) {
        assert(spec.items[i].kind > FAULT_NONE && spec.items[i].kind < FAULT_KIND_COUNT);
        assert(!(seen & (1u << spec.items[i].kind)));
        seen |= 1u << spec.items[i].kind;
        sum_ppm += spec.items[i].weight_ppm;
    }
    assert(sum_ppm <= FAULT_WEIGHT_FULL_PPM);

    struct prng rng;
    prng_seed(&rng, size, 0);
    for (int i = 0; i < 1000; i++) {
        enum fault_kind k = fault_spec_draw(&spec, &rng);
        assert(k == FAULT_NONE ? sum_ppm < FAULT_WEIGHT_FULL_PPM : (seen & (1u << k)) != 0);
    }

    char text[FAULT_DESCRIBE_BYTES], again[FAULT_DESCRIBE_BYTES];
    size_t len = fault_spec_describe(&spec, text, sizeof(text));
    assert(len == strlen(text) && len < sizeof(text));
    struct fault_spec back;
    assert(fault_spec_parse(&back, text, len, err, sizeof(err)) == 0);
    assert(memcmp(&back, &spec, sizeof(spec)) == 0);
    fault_spec_describe(&back, again, sizeof(again));
    assert(strcmp(text, again) == 0);
    return 0;
}
