#include "spec_cache.h"

#include <string.h>

int spec_cache_parse(struct spec_cache *cache, struct distribution *d, enum distribution_unit unit, const char *s, size_t len,
                     uint64_t max, char *err, size_t err_size)
{
    if (cache == NULL || len == 0 || len > SPEC_CACHE_TEXT_MAX_BYTES)
        return distribution_parse(d, unit, s, len, max, err, err_size);
    for (size_t i = 0; i < SPEC_CACHE_ENTRIES; i++) {
        const struct spec_cache_entry *entry = &cache->entries[i];
        if (entry->len == len && entry->unit == unit && entry->max == max && memcmp(entry->text, s, len) == 0) {
            *d = entry->parsed;
            return 0;
        }
    }
    if (distribution_parse(d, unit, s, len, max, err, err_size) != 0)
        return -1;
    struct spec_cache_entry *victim = &cache->entries[cache->next_victim];
    cache->next_victim = (cache->next_victim + 1) % SPEC_CACHE_ENTRIES;
    victim->max = max;
    victim->unit = (uint8_t)unit;
    victim->len = (uint8_t)len;
    memcpy(victim->text, s, len);
    victim->parsed = *d;
    return 0;
}
