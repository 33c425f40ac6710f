/* libFuzzer harness: durations, /wait/<ms> numbers (whole and decimal) and byte sizes from arbitrary
 * bytes; what is printed reads back. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    uint64_t ns, bytes;
    char text[64];
    if (duration_parse_ns(s, size, &ns) == 0) {
        assert(ns <= DURATION_MAX_NS);
        /* what we print we can read back, to within the printed precision */
        duration_format(ns, text, sizeof(text));
        uint64_t again;
        assert(duration_parse_ns(text, __builtin_strlen(text), &again) == 0);
        /* the exact form reads back to the very same nanosecond */
        duration_format_exact(ns, text, sizeof(text));
        assert(duration_parse_ns(text, __builtin_strlen(text), &again) == 0 && again == ns);
    }
    if (duration_parse_decimal_ms(s, size, &ns) == 0)
        assert(ns <= DURATION_MAX_NS && size <= DURATION_DECIMAL_MS_MAX_CHARS);
    if (size_parse_bytes(s, size, 1ull << 30, &bytes) == 0) {
        assert(bytes <= (1ull << 30));
        uint64_t again;
        size_format_exact(bytes, text, sizeof(text));
        assert(size_parse_bytes(text, __builtin_strlen(text), 1ull << 30, &again) == 0 && again == bytes);
    }
    return 0;
}
