/* Unit tests for server/hpack_scan.c, on the examples of RFC 7541 Appendix C (requests with and
 * without Huffman coding, responses with a 256-byte table that evicts), whose decoded lists the RFC
 * prints, and on hostile blocks (references to large entries, bad integers, EOS). */
#include <stdlib.h>
#include <string.h>

#include "hpack_scan.h"
#include "unit.h"

/* A dynamic table given as an array, newest entry first. */
struct array_table {
    const struct hpack_scan_field *entries;
    size_t count;
};

static void array_get(const void *ctx, size_t index, struct hpack_scan_field *out)
{
    const struct array_table *t = ctx;
    *out = t->entries[index];
}

static struct hpack_scan_table_view view_of(const struct array_table *t, size_t capacity)
{
    size_t size = 0;
    for (size_t i = 0; i < t->count; i++)
        size += t->entries[i].name_bytes + t->entries[i].value_bytes + HPACK_SCAN_ENTRY_OVERHEAD_BYTES;
    return (struct hpack_scan_table_view){.num_entries = t->count, .size_bytes = size, .capacity_bytes = capacity,
                                          .max_capacity_bytes = capacity, .get = array_get, .ctx = t};
}

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        sscanf(p, "%2x", &v);
        out[n++] = (uint8_t)v;
        p += 2;
    }
    return n;
}

static int scan_hex(const struct array_table *table, size_t capacity, const char *hex, struct hpack_scan_result *r)
{
    static uint8_t block[4096];
    size_t len = unhex(hex, block);
    struct hpack_scan_table_view view = view_of(table, capacity);
    return hpack_scan_block(&view, block, len, r);
}

static const struct hpack_scan_field authority_www = {10, 15, true}; /* :authority: www.example.com */
static const struct hpack_scan_field cache_control_no_cache = {13, 8, false};

static void test_rfc7541_c3_requests_without_huffman(void)
{
    struct hpack_scan_result r;
    struct array_table empty = {NULL, 0};
    /* C.3.1: :method GET, :scheme http, :path /, :authority www.example.com (inserted) */
    CHECK(scan_hex(&empty, 4096, "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", &r) == 0);
    CHECK(r.field_bytes == 52 && r.regular_fields == 0 && r.pseudo_prefix_bytes == 20);
    /* C.3.2: the same with :authority from the dynamic table (index 62), plus cache-control: no-cache */
    struct hpack_scan_field t2[] = {authority_www};
    struct array_table table2 = {t2, 1};
    CHECK(scan_hex(&table2, 4096, "8286 84be 5808 6e6f 2d63 6163 6865", &r) == 0);
    CHECK(r.field_bytes == 73 && r.regular_fields == 1 && r.pseudo_prefix_bytes == 4);
    /* C.3.3: index 63 is now :authority (cache-control is newer), custom-key: custom-value */
    struct hpack_scan_field t3[] = {cache_control_no_cache, authority_www};
    struct array_table table3 = {t3, 2};
    CHECK(scan_hex(&table3, 4096, "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", &r) == 0);
    CHECK(r.field_bytes == 85 && r.regular_fields == 1 && r.pseudo_prefix_bytes == 4);
}

static void test_rfc7541_c4_requests_with_huffman(void)
{
    struct hpack_scan_result r;
    struct array_table empty = {NULL, 0};
    CHECK(scan_hex(&empty, 4096, "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", &r) == 0);
    CHECK(r.field_bytes == 52 && r.regular_fields == 0);
    struct hpack_scan_field t2[] = {authority_www};
    struct array_table table2 = {t2, 1};
    CHECK(scan_hex(&table2, 4096, "8286 84be 5886 a8eb 1064 9cbf", &r) == 0);
    CHECK(r.field_bytes == 73 && r.regular_fields == 1);
    struct hpack_scan_field t3[] = {cache_control_no_cache, authority_www};
    struct array_table table3 = {t3, 2};
    CHECK(scan_hex(&table3, 4096, "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", &r) == 0);
    CHECK(r.field_bytes == 85 && r.regular_fields == 1);
}

/* C.5 and C.6: responses with a 256-byte table, where every later block evicts and then refers to
 * entries by indexes that only come out right if the evictions are followed exactly. */
static void test_rfc7541_c5_c6_eviction(void)
{
    static const char *const blocks[2][3] = {
        {"4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d "
         "546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
         "4803 3330 37c1 c0bf",
         "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f "
         "6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b "
         "2076 6572 7369 6f6e 3d31"},
        {"4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 "
         "8f0b 97c8 e9ae 82ae 43d3",
         "4883 640e ffc1 c0bf",
         "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 "
         "dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07"},
    };
    /* table states before the 2nd and 3rd block, as printed in the RFC */
    struct hpack_scan_field before2[] = {{8, 23, false}, {4, 29, false}, {13, 7, false}, {7, 3, true}};
    struct hpack_scan_field before3[] = {{7, 3, true}, {8, 23, false}, {4, 29, false}, {13, 7, false}};
    struct array_table empty = {NULL, 0}, table2 = {before2, 4}, table3 = {before3, 4};
    for (int huffman = 0; huffman < 2; huffman++) {
        struct hpack_scan_result r;
        CHECK(scan_hex(&empty, 256, blocks[huffman][0], &r) == 0);
        CHECK(r.field_bytes == 94 && r.regular_fields == 3);
        CHECK(scan_hex(&table2, 256, blocks[huffman][1], &r) == 0);
        CHECK(r.field_bytes == 94 && r.regular_fields == 3 && r.pseudo_prefix_bytes == 5);
        CHECK(scan_hex(&table3, 256, blocks[huffman][2], &r) == 0);
        CHECK(r.field_bytes == 180 && r.regular_fields == 5 && r.pseudo_prefix_bytes == 1);
    }
}

static void test_huffman_lengths(void)
{
    uint8_t buf[64];
    /* Appendix C.4/C.6 strings: "www.example.com", "no-cache", "custom-value", "Mon, 21 Oct 2013 20:13:21 GMT" */
    size_t n = unhex("f1e3 c2e5 f23a 6ba0 ab90 f4ff", buf);
    CHECK(hpack_scan_huffman_decoded_bytes(buf, n) == 15);
    n = unhex("a8eb 1064 9cbf", buf);
    CHECK(hpack_scan_huffman_decoded_bytes(buf, n) == 8);
    n = unhex("25a8 49e9 5bb8 e8b4 bf", buf);
    CHECK(hpack_scan_huffman_decoded_bytes(buf, n) == 12);
    n = unhex("d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff", buf);
    CHECK(hpack_scan_huffman_decoded_bytes(buf, n) == 29);
    CHECK(hpack_scan_huffman_decoded_bytes(buf, 0) == 0);
    /* the 30-bit EOS symbol inside a string is an error (5.2) */
    memset(buf, 0xff, 8);
    CHECK(hpack_scan_huffman_decoded_bytes(buf, 8) == -1);
    /* 0xff alone is padding: no symbol */
    CHECK(hpack_scan_huffman_decoded_bytes(buf, 1) == 0);
}

static void test_references_to_a_large_entry_count_in_full(void)
{
    /* the bomb: one 4,000-byte entry, then 1,000 one-byte references to it (0xbe = index 62) */
    struct hpack_scan_field big[] = {{12, 4000, false}};
    struct array_table table = {big, 1};
    struct hpack_scan_table_view view = view_of(&table, 4096);
    uint8_t block[1003];
    block[0] = 0x82, block[1] = 0x84, block[2] = 0x86; /* :method GET, :path /, :scheme http */
    memset(block + 3, 0xbe, 1000);
    struct hpack_scan_result r;
    CHECK(hpack_scan_block(&view, block, sizeof(block), &r) == 0);
    CHECK(r.field_bytes == 10 + 6 + 11 + 1000ull * 4012);
    CHECK(r.regular_fields == 1000 && r.pseudo_prefix_bytes == 3);
}

static void test_entry_inserted_then_referenced_in_one_block(void)
{
    /* literal with incremental indexing, new name "a" (raw), value 100 x 'v', then 3 references to it */
    uint8_t block[1 + 2 + 1 + 100 + 3];
    size_t n = 0;
    block[n++] = 0x40;
    block[n++] = 0x01, block[n++] = 'a';
    block[n++] = 0x64; /* raw, length 100 */
    memset(block + n, 'v', 100);
    n += 100;
    block[n++] = 0xbe, block[n++] = 0xbe, block[n++] = 0xbe;
    struct array_table empty = {NULL, 0};
    struct hpack_scan_table_view view = view_of(&empty, 4096);
    struct hpack_scan_result r;
    CHECK(hpack_scan_block(&view, block, n, &r) == 0);
    CHECK(r.field_bytes == 4 * 101 && r.regular_fields == 4 && r.pseudo_prefix_bytes == 0);
    /* with a table too small for the entry it is not inserted (4.4): the reference is then invalid */
    view.capacity_bytes = view.max_capacity_bytes = 100;
    CHECK(hpack_scan_block(&view, block, n, &r) == -1);
}

static void test_invalid_blocks(void)
{
    struct array_table empty = {NULL, 0};
    struct hpack_scan_result r;
    CHECK(scan_hex(&empty, 4096, "80", &r) == -1);             /* index 0 */
    CHECK(scan_hex(&empty, 4096, "be", &r) == -1);             /* dynamic index past an empty table */
    CHECK(scan_hex(&empty, 4096, "bd", &r) == 0);              /* 61: the last static entry */
    CHECK(scan_hex(&empty, 4096, "ff", &r) == -1);             /* integer cut short */
    CHECK(scan_hex(&empty, 4096, "ff ff ff ff ff 01", &r) == -1); /* 5 continuation octets: h2o refuses */
    CHECK(scan_hex(&empty, 4096, "ff 80 80 80 00", &r) == -1); /* 4 octets is fine as an integer, index too large */
    CHECK(scan_hex(&empty, 4096, "40 05 61", &r) == -1);       /* name string longer than the block */
    CHECK(scan_hex(&empty, 4096, "3f e1 1f", &r) == 0);        /* size update to 4096 */
    CHECK(scan_hex(&empty, 4096, "3f e2 1f", &r) == -1);       /* size update to 4097, above the maximum */
    CHECK(scan_hex(&empty, 4096, "40 84 ff ff ff ff 00", &r) == -1); /* Huffman name holding EOS */
}

static void test_size_update_evicts_before_references(void)
{
    struct hpack_scan_field t[] = {{1, 1, false}};
    struct array_table table = {t, 1};
    struct hpack_scan_result r;
    CHECK(scan_hex(&table, 4096, "be", &r) == 0 && r.field_bytes == 2);
    CHECK(scan_hex(&table, 4096, "20 be", &r) == -1); /* size 0 empties the table first */
}

static void test_representation_walk(void)
{
    uint8_t block[64];
    size_t n = unhex("82 3f e1 1f 41 03 61 62 63 0f 10 01 78 10 01 61 01 62", block);
    enum hpack_scan_representation kinds[8];
    size_t count = 0, off = 0;
    while (off < n) {
        ssize_t len = hpack_scan_next_representation(block + off, n - off, &kinds[count]);
        CHECK(len > 0);
        if (len <= 0)
            return;
        off += (size_t)len;
        count++;
    }
    CHECK(count == 5);
    CHECK(kinds[0] == HPACK_SCAN_INDEXED && kinds[1] == HPACK_SCAN_SIZE_UPDATE && kinds[2] == HPACK_SCAN_LITERAL_INDEXED);
    CHECK(kinds[3] == HPACK_SCAN_LITERAL_NOT_INDEXED && kinds[4] == HPACK_SCAN_LITERAL_NOT_INDEXED);
    CHECK(hpack_scan_changes_table(kinds[1]) && hpack_scan_changes_table(kinds[2]) && !hpack_scan_changes_table(kinds[0]));
    enum hpack_scan_representation k;
    CHECK(hpack_scan_next_representation(block + 4, 3, &k) == -1); /* value missing */
}

int main(void)
{
    RUN(test_rfc7541_c3_requests_without_huffman);
    RUN(test_rfc7541_c4_requests_with_huffman);
    RUN(test_rfc7541_c5_c6_eviction);
    RUN(test_huffman_lengths);
    RUN(test_references_to_a_large_entry_count_in_full);
    RUN(test_entry_inserted_then_referenced_in_one_block);
    RUN(test_invalid_blocks);
    RUN(test_size_update_evicts_before_references);
    RUN(test_representation_walk);
    return unit_finish();
}
