/* hpack_scan: what an HPACK header block (RFC 7541) decodes to, measured without decoding it.
 *
 * Why: libh2o 2.2.5 decodes every field of a header block into the request's memory before any
 * handler can look at it, and puts no bound on the decoded list. A one-byte reference to a 4 KB
 * dynamic-table entry decodes to 4 KB, so a 400 KB block can cost hundreds of MiB. This module walks
 * a block the way a decoder does (integers, string lengths, Huffman-decoded lengths, the dynamic
 * table's insertions, evictions and size updates) but keeps only sizes, so the caller can refuse a
 * block before anything decodes it.
 *
 * Contract: nothing is allocated or copied; the cost is linear in the block's wire size. A block this
 * module calls invalid is one libh2o 2.2.5's decoder also fails on (a connection error,
 * COMPRESSION_ERROR); the converse need not hold (it is lenient on Huffman padding and on header
 * name characters, which the decoder still checks afterwards). Pure logic: no h2o types here. */
#ifndef MOCKUPSTREAM_HPACK_SCAN_H
#define MOCKUPSTREAM_HPACK_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* RFC 7541 4.1: an entry's size is its name and value lengths plus 32. */
#define HPACK_SCAN_ENTRY_OVERHEAD_BYTES 32
/* Largest dynamic table the scanner can follow (h2o 2.2.5 advertises 4096). */
#define HPACK_SCAN_MAX_TABLE_BYTES 8192
#define HPACK_SCAN_MAX_ENTRIES (HPACK_SCAN_MAX_TABLE_BYTES / HPACK_SCAN_ENTRY_OVERHEAD_BYTES)

/* A decoded field as far as sizes go. */
struct hpack_scan_field {
    uint32_t name_bytes;
    uint32_t value_bytes;
    bool name_is_pseudo; /* the name starts with ':' */
};

/* The decoder's dynamic table as it stands before the block, read through `get` so that nothing is
 * copied: get(ctx, 0, ...) is the newest entry. */
struct hpack_scan_table_view {
    size_t num_entries;
    size_t size_bytes;         /* sum of the entries' sizes */
    size_t capacity_bytes;     /* current capacity (SETTINGS value or the last size update) */
    size_t max_capacity_bytes; /* SETTINGS_HEADER_TABLE_SIZE: a size update above it is an error */
    void (*get)(const void *ctx, size_t index, struct hpack_scan_field *out);
    const void *ctx;
};

struct hpack_scan_result {
    uint64_t field_bytes;       /* decoded name + value bytes of every field, pseudo-header fields included */
    uint64_t regular_fields;    /* fields that are not pseudo-header fields */
    size_t pseudo_prefix_bytes; /* wire bytes before the first regular field (the whole block if none) */
};

/* Measures the block src[0..len). Returns 0 and fills *out, or -1 if the block is not valid HPACK
 * (truncated integer or string, index 0 or past the tables, a size update above the maximum, the
 * Huffman EOS symbol inside a string). The view is only read: the caller's decoder still applies the
 * block to its own table. */
int hpack_scan_block(const struct hpack_scan_table_view *table, const uint8_t *src, size_t len, struct hpack_scan_result *out);

enum hpack_scan_representation {
    HPACK_SCAN_INDEXED,              /* indexed field (6.1): changes no table */
    HPACK_SCAN_LITERAL_INDEXED,      /* literal with incremental indexing (6.2.1): inserts an entry */
    HPACK_SCAN_LITERAL_NOT_INDEXED,  /* literal without indexing or never indexed (6.2.2, 6.2.3) */
    HPACK_SCAN_SIZE_UPDATE,          /* dynamic table size update (6.3): may evict */
};

/* True for the representations a decoder must see to keep its dynamic table in step with the
 * encoder's, even when the fields they carry are thrown away. */
static inline bool hpack_scan_changes_table(enum hpack_scan_representation kind)
{
    return kind == HPACK_SCAN_LITERAL_INDEXED || kind == HPACK_SCAN_SIZE_UPDATE;
}

/* Length in bytes of the representation at the start of src[0..len), and its kind in *kind; -1 if it
 * is truncated or malformed. Does not look at any table. */
ssize_t hpack_scan_next_representation(const uint8_t *src, size_t len, enum hpack_scan_representation *kind);

/* Number of octets a Huffman-coded string (RFC 7541 5.2, Appendix B) decodes to, or -1 if it holds
 * the EOS symbol. Bits after the last whole symbol are taken as padding. */
ssize_t hpack_scan_huffman_decoded_bytes(const uint8_t *src, size_t len);

#endif
