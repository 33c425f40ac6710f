/* hpack_scan: see hpack_scan.h. Section numbers are RFC 7541's. */
#include "hpack_scan.h"

/* The static table (Appendix A) as sizes: index i is entry i + 1. Entries 1..14 are pseudo-header
 * fields (:authority, :method, :path, :scheme, :status). */
#define STATIC_TABLE_ENTRIES 61
#define STATIC_TABLE_LAST_PSEUDO 14
static const struct {
    uint8_t name_bytes, value_bytes;
} static_table[STATIC_TABLE_ENTRIES] = {
#define E(name, value) {sizeof(name) - 1, sizeof(value) - 1}
    E(":authority", ""),      E(":method", "GET"),      E(":method", "POST"),        E(":path", "/"),
    E(":path", "/index.html"), E(":scheme", "http"),     E(":scheme", "https"),       E(":status", "200"),
    E(":status", "204"),      E(":status", "206"),      E(":status", "304"),         E(":status", "400"),
    E(":status", "404"),      E(":status", "500"),      E("accept-charset", ""),     E("accept-encoding", "gzip, deflate"),
    E("accept-language", ""), E("accept-ranges", ""),   E("accept", ""),             E("access-control-allow-origin", ""),
    E("age", ""),             E("allow", ""),           E("authorization", ""),      E("cache-control", ""),
    E("content-disposition", ""), E("content-encoding", ""), E("content-language", ""), E("content-length", ""),
    E("content-location", ""), E("content-range", ""),  E("content-type", ""),       E("cookie", ""),
    E("date", ""),            E("etag", ""),            E("expect", ""),             E("expires", ""),
    E("from", ""),            E("host", ""),            E("if-match", ""),           E("if-modified-since", ""),
    E("if-none-match", ""),   E("if-range", ""),        E("if-unmodified-since", ""), E("last-modified", ""),
    E("link", ""),            E("location", ""),        E("max-forwards", ""),       E("proxy-authenticate", ""),
    E("proxy-authorization", ""), E("range", ""),       E("referer", ""),            E("refresh", ""),
    E("retry-after", ""),     E("server", ""),          E("set-cookie", ""),         E("strict-transport-security", ""),
    E("transfer-encoding", ""), E("user-agent", ""),    E("vary", ""),               E("via", ""),
    E("www-authenticate", ""),
#undef E
};

/* The Huffman code of Appendix B is canonical: codes of one length are consecutive and follow all
 * shorter ones. So a code's length is the smallest L whose first L bits are below limit[L], where
 * limit[L] is one past the last code of length L (counts of codes per length taken from Appendix B:
 * 10 of 5 bits, 26 of 6, 32 of 7, 6 of 8, ...). Lengths run from 5 to 30 bits. */
#define HUFFMAN_MIN_BITS 5
#define HUFFMAN_MAX_BITS 30
static const uint32_t huffman_limit[HUFFMAN_MAX_BITS + 1] = {
    [5] = 10,         [6] = 46,         [7] = 124,        [8] = 254,        [9] = 508,        [10] = 1021,
    [11] = 2045,      [12] = 4092,      [13] = 8190,      [14] = 16382,     [15] = 32767,     [16] = 65534,
    [17] = 131068,    [18] = 262136,    [19] = 524275,    [20] = 1048558,   [21] = 2097129,   [22] = 4194284,
    [23] = 8388597,   [24] = 16777206,  [25] = 33554416,  [26] = 67108847,  [27] = 134217713, [28] = 268435455,
    [29] = 536870910, [30] = 1073741824,
};
/* EOS (symbol 256) is the 30-bit all-ones code; ':' is the 7-bit code 1011100. */
#define HUFFMAN_EOS_CODE 0x3fffffffu
#define HUFFMAN_COLON_CODE 0x5cu
#define HUFFMAN_COLON_BITS 7

ssize_t hpack_scan_huffman_decoded_bytes(const uint8_t *src, size_t len)
{
    /* `bits` holds the next unread bits left-aligned; past the input it reads as ones (padding). */
    uint64_t bits = 0;
    unsigned nbits = 0;
    size_t in = 0, symbols = 0;
    for (;;) {
        while (nbits <= 56 && in < len) {
            bits |= (uint64_t)src[in++] << (56 - nbits);
            nbits += 8;
        }
        if (nbits < HUFFMAN_MIN_BITS)
            break;
        uint64_t window = nbits >= 64 ? bits : bits | (~0ull >> nbits);
        unsigned code_bits = HUFFMAN_MIN_BITS;
        uint32_t code;
        while ((code = (uint32_t)(window >> (64 - code_bits))) >= huffman_limit[code_bits])
            code_bits++; /* ends at 30 bits at most: every 30-bit value is below limit[30] */
        if (code_bits > nbits)
            break; /* the rest is padding */
        if (code_bits == HUFFMAN_MAX_BITS && code == HUFFMAN_EOS_CODE)
            return -1;
        bits <<= code_bits;
        nbits -= code_bits;
        symbols++;
    }
    return (ssize_t)symbols;
}

/* ---- primitives (5.1, 5.2) ---- */

/* An integer with an N-bit prefix. Like libh2o 2.2.5, at most 4 octets may follow the prefix (values
 * up to 2^28 and some): a longer one is an error there, so it is one here. */
static int decode_int(const uint8_t **src, const uint8_t *end, unsigned prefix_bits, uint32_t *out)
{
    if (*src >= end)
        return -1;
    uint32_t prefix_max = (1u << prefix_bits) - 1;
    uint32_t value = *(*src)++ & prefix_max;
    if (value < prefix_max) {
        *out = value;
        return 0;
    }
    for (unsigned i = 0, shift = 0; i < 4; i++, shift += 7) {
        if (*src >= end)
            return -1;
        uint8_t octet = *(*src)++;
        value += (uint32_t)(octet & 0x7f) << shift;
        if ((octet & 0x80) == 0) {
            *out = value;
            return 0;
        }
    }
    return -1;
}

/* A string literal: its decoded length, and whether it starts with ':' (names only care). */
static int decode_string(const uint8_t **src, const uint8_t *end, uint32_t *decoded_bytes, bool *starts_with_colon)
{
    if (*src >= end)
        return -1;
    bool huffman = (**src & 0x80) != 0;
    uint32_t wire_bytes;
    if (decode_int(src, end, 7, &wire_bytes) != 0 || wire_bytes > (size_t)(end - *src))
        return -1;
    const uint8_t *s = *src;
    *src += wire_bytes;
    if (!huffman) {
        *decoded_bytes = wire_bytes;
        *starts_with_colon = wire_bytes != 0 && s[0] == ':';
        return 0;
    }
    ssize_t n = hpack_scan_huffman_decoded_bytes(s, wire_bytes);
    if (n < 0)
        return -1;
    *decoded_bytes = (uint32_t)n;
    *starts_with_colon = n != 0 && (s[0] >> (8 - HUFFMAN_COLON_BITS)) == HUFFMAN_COLON_CODE;
    return 0;
}

ssize_t hpack_scan_next_representation(const uint8_t *src, size_t len, enum hpack_scan_representation *kind)
{
    const uint8_t *p = src, *end = src + len;
    uint32_t index, ignored_len;
    bool ignored_colon;
    if (len == 0)
        return -1;
    uint8_t first = *p;
    if (first & 0x80) {
        *kind = HPACK_SCAN_INDEXED;
        if (decode_int(&p, end, 7, &index) != 0)
            return -1;
        return p - src;
    }
    if ((first & 0xe0) == 0x20) {
        *kind = HPACK_SCAN_SIZE_UPDATE;
        if (decode_int(&p, end, 5, &index) != 0)
            return -1;
        return p - src;
    }
    unsigned prefix_bits = (first & 0x40) ? 6 : 4;
    *kind = (first & 0x40) ? HPACK_SCAN_LITERAL_INDEXED : HPACK_SCAN_LITERAL_NOT_INDEXED;
    if (decode_int(&p, end, prefix_bits, &index) != 0)
        return -1;
    if (index == 0 && decode_string(&p, end, &ignored_len, &ignored_colon) != 0)
        return -1;
    if (decode_string(&p, end, &ignored_len, &ignored_colon) != 0)
        return -1;
    return p - src;
}

/* ---- the dynamic table, followed by sizes (2.3.2, 4) ---- */

struct table_sim {
    const struct hpack_scan_table_view *view;
    size_t view_live;  /* the view's newest entries still in the table */
    struct hpack_scan_field added[HPACK_SCAN_MAX_ENTRIES]; /* inserted by this block, a ring */
    size_t added_head; /* added[(added_head + i) % MAX] is the i-th newest */
    size_t added_live;
    size_t size_bytes, capacity_bytes;
};

static size_t entry_size(const struct hpack_scan_field *f)
{
    return (size_t)f->name_bytes + f->value_bytes + HPACK_SCAN_ENTRY_OVERHEAD_BYTES;
}

/* Entry `index` (0 = newest) of the dynamic table; -1 past its end. */
static int sim_get(const struct table_sim *sim, size_t index, struct hpack_scan_field *out)
{
    if (index < sim->added_live) {
        *out = sim->added[(sim->added_head + index) % HPACK_SCAN_MAX_ENTRIES];
        return 0;
    }
    index -= sim->added_live;
    if (index >= sim->view_live)
        return -1;
    sim->view->get(sim->view->ctx, index, out);
    return 0;
}

static void sim_evict_oldest(struct table_sim *sim)
{
    struct hpack_scan_field oldest;
    if (sim->view_live != 0) {
        sim->view->get(sim->view->ctx, sim->view_live - 1, &oldest);
        sim->view_live--;
    } else {
        oldest = sim->added[(sim->added_head + sim->added_live - 1) % HPACK_SCAN_MAX_ENTRIES];
        sim->added_live--;
    }
    sim->size_bytes -= entry_size(&oldest);
}

static void sim_insert(struct table_sim *sim, const struct hpack_scan_field *f)
{
    size_t add = entry_size(f);
    while (sim->view_live + sim->added_live != 0 && sim->size_bytes + add > sim->capacity_bytes)
        sim_evict_oldest(sim);
    if (add > sim->capacity_bytes)
        return; /* 4.4: an entry larger than the table empties it and is not added */
    sim->added_head = (sim->added_head + HPACK_SCAN_MAX_ENTRIES - 1) % HPACK_SCAN_MAX_ENTRIES;
    sim->added[sim->added_head] = *f;
    sim->added_live++;
    sim->size_bytes += add;
}

/* Field of a 1-based index into the static table followed by the dynamic one (2.3.3). */
static int lookup(const struct table_sim *sim, uint32_t index, struct hpack_scan_field *out)
{
    if (index == 0)
        return -1;
    if (index <= STATIC_TABLE_ENTRIES) {
        out->name_bytes = static_table[index - 1].name_bytes;
        out->value_bytes = static_table[index - 1].value_bytes;
        out->name_is_pseudo = index <= STATIC_TABLE_LAST_PSEUDO;
        return 0;
    }
    return sim_get(sim, index - STATIC_TABLE_ENTRIES - 1, out);
}

int hpack_scan_block(const struct hpack_scan_table_view *table, const uint8_t *src, size_t len, struct hpack_scan_result *out)
{
    if (table->max_capacity_bytes > HPACK_SCAN_MAX_TABLE_BYTES || table->capacity_bytes > table->max_capacity_bytes)
        return -1;
    /* not zeroed as a whole: `added` (3 KiB) is only read where it has been written */
    struct table_sim sim;
    sim.view = table;
    sim.view_live = table->num_entries;
    sim.added_head = sim.added_live = 0;
    sim.size_bytes = table->size_bytes;
    sim.capacity_bytes = table->capacity_bytes;
    *out = (struct hpack_scan_result){0};
    bool in_prefix = true;
    const uint8_t *p = src, *end = src + len;
    while (p < end) {
        const uint8_t *start = p;
        struct hpack_scan_field field;
        uint32_t index;
        bool colon;
        uint8_t first = *p;
        if (first & 0x80) { /* 6.1 */
            if (decode_int(&p, end, 7, &index) != 0 || lookup(&sim, index, &field) != 0)
                return -1;
        } else if ((first & 0xe0) == 0x20) { /* 6.3 */
            if (decode_int(&p, end, 5, &index) != 0 || index > table->max_capacity_bytes)
                return -1;
            sim.capacity_bytes = index;
            while (sim.view_live + sim.added_live != 0 && sim.size_bytes > sim.capacity_bytes)
                sim_evict_oldest(&sim);
            continue;
        } else { /* 6.2 */
            bool indexing = (first & 0x40) != 0;
            if (decode_int(&p, end, indexing ? 6 : 4, &index) != 0)
                return -1;
            if (index != 0) {
                if (lookup(&sim, index, &field) != 0)
                    return -1;
            } else {
                if (decode_string(&p, end, &field.name_bytes, &colon) != 0)
                    return -1;
                field.name_is_pseudo = colon;
            }
            if (decode_string(&p, end, &field.value_bytes, &colon) != 0)
                return -1;
            if (indexing)
                sim_insert(&sim, &field);
        }
        out->field_bytes += (uint64_t)field.name_bytes + field.value_bytes;
        if (!field.name_is_pseudo) {
            out->regular_fields++;
            if (in_prefix) {
                in_prefix = false;
                out->pseudo_prefix_bytes = (size_t)(start - src);
            }
        }
    }
    if (in_prefix)
        out->pseudo_prefix_bytes = len;
    return 0;
}
