/* libFuzzer harness: HPACK header blocks measured by hpack_scan against a small dynamic table. The
 * first input byte picks the table's capacity; the rest is the block. A block the scanner accepts
 * must also split into whole representations, and its counts must be bounded by its size. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "hpack_scan.h"

/* newest first: a pseudo-header entry, a 4,000-byte value, a tiny field */
static const struct hpack_scan_field entries[] = {{10, 15, true}, {12, 4000, false}, {1, 1, false}};

static void get(const void *ctx, size_t index, struct hpack_scan_field *out)
{
    *out = entries[index];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t capacity = (size_t)data[0] * 32; /* 0 .. 8160 */
    size_t count = 0, used = 0;
    while (count < 3 && used + entries[count].name_bytes + entries[count].value_bytes + 32 <= capacity)
        used += entries[count].name_bytes + entries[count].value_bytes + 32, count++;
    struct hpack_scan_table_view view = {.num_entries = count, .size_bytes = used, .capacity_bytes = capacity,
                                         .max_capacity_bytes = capacity, .get = get, .ctx = NULL};
    const uint8_t *block = data + 1;
    size_t len = size - 1;
    struct hpack_scan_result r;
    if (hpack_scan_block(&view, block, len, &r) != 0)
        return 0;
    assert(r.pseudo_prefix_bytes <= len);
    assert(r.regular_fields <= len);
    /* each field decodes to at most the largest entry or 8/5 of the block, plus its literal value */
    assert(r.field_bytes <= (uint64_t)len * (4012 + 2 * len + 64));
    size_t off = 0;
    while (off < len) {
        enum hpack_scan_representation kind;
        ssize_t rep = hpack_scan_next_representation(block + off, len - off, &kind);
        assert(rep > 0);
        off += (size_t)rep;
    }
    assert(off == len);
    return 0;
}
