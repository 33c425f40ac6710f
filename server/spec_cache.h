/* spec_cache: the last few specs (delay=, status=, size= and their X-Mock-* forms) a worker parsed,
 * kept by their exact text.
 *
 * A benchmark sends the same spec with every request (?delay=lognormal:p50=10ms,p99=50ms): parsing
 * it costs ~1,000 instructions per request (a lognormal's mu and sigma are solved from its
 * percentiles each time, callgrind), a hit here a compare of its bytes and a copy. Only specs that
 * parsed are kept: a refusal is parsed, and explained, every time. One per worker (no locking);
 * ~2.8 KiB. */
#ifndef MOCKUPSTREAM_SPEC_CACHE_H
#define MOCKUPSTREAM_SPEC_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "distribution.h"

#define SPEC_CACHE_ENTRIES 4
/* Longer specs are parsed every time (a mix of many items: rare in a benchmark's every request). */
#define SPEC_CACHE_TEXT_MAX_BYTES 96

struct spec_cache_entry {
    uint64_t max;
    uint8_t unit; /* enum distribution_unit; with max and the text, the key */
    uint8_t len;  /* 0: unused */
    char text[SPEC_CACHE_TEXT_MAX_BYTES];
    struct distribution parsed;
};

struct spec_cache {
    struct spec_cache_entry entries[SPEC_CACHE_ENTRIES];
    unsigned next_victim; /* replaced in turn */
};

/* distribution_parse (same arguments, same results), answered from `cache` when the same text was
 * parsed for the same unit and max before. `cache` may be NULL: then it only parses. */
int spec_cache_parse(struct spec_cache *cache, struct distribution *d, enum distribution_unit unit, const char *s, size_t len,
                     uint64_t max, char *err, size_t err_size);

#endif
