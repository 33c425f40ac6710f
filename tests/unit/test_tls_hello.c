/* Unit tests for tls_hello: ALPN found in ClientHellos built here byte by byte, every split point
 * of a valid hello is "incomplete" (never a wrong answer), multi-record hellos, and refusals. */
#include <string.h>

#include "tls_hello.h"
#include "unit.h"

struct bytes {
    unsigned char data[40000];
    size_t len;
};

static void put(struct bytes *b, const void *p, size_t n)
{
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u8(struct bytes *b, unsigned v)
{
    b->data[b->len++] = (unsigned char)v;
}

static void put_u16(struct bytes *b, unsigned v)
{
    put_u8(b, v >> 8);
    put_u8(b, v & 0xff);
}

static void put_u24(struct bytes *b, size_t v)
{
    put_u8(b, (unsigned)(v >> 16) & 0xff);
    put_u16(b, (unsigned)v & 0xffff);
}

/* A ClientHello handshake message (header included) offering `alpn` ("\x02h2\x08http/1.1"-style
 * wire list, NULL: no ALPN extension), with `padding` bytes of an unrelated extension before it. */
static void client_hello(struct bytes *hs, const char *alpn, size_t alpn_len, size_t padding, int with_extensions)
{
    struct bytes body = {.len = 0};
    put_u16(&body, 0x0303);
    for (int i = 0; i < 32; i++)
        put_u8(&body, (unsigned)i);
    put_u8(&body, 32); /* session id */
    for (int i = 0; i < 32; i++)
        put_u8(&body, 0xaa);
    put_u16(&body, 4); /* two cipher suites */
    put_u16(&body, 0x1301);
    put_u16(&body, 0xc02b);
    put_u8(&body, 1); /* compression: null */
    put_u8(&body, 0);
    if (with_extensions) {
        struct bytes ext = {.len = 0};
        put_u16(&ext, 0x0015); /* padding extension */
        put_u16(&ext, (unsigned)padding);
        for (size_t i = 0; i < padding; i++)
            put_u8(&ext, 0);
        if (alpn != NULL) {
            put_u16(&ext, 16);
            put_u16(&ext, (unsigned)alpn_len + 2);
            put_u16(&ext, (unsigned)alpn_len);
            put(&ext, alpn, alpn_len);
        }
        put_u16(&body, (unsigned)ext.len);
        put(&body, ext.data, ext.len);
    }
    hs->len = 0;
    put_u8(hs, 1);
    put_u24(hs, body.len);
    put(hs, body.data, body.len);
}

/* Wraps handshake bytes into TLS records of at most `record_max` bytes each. */
static void records(struct bytes *out, const struct bytes *hs, size_t record_max)
{
    out->len = 0;
    for (size_t off = 0; off < hs->len; off += record_max) {
        size_t n = hs->len - off < record_max ? hs->len - off : record_max;
        put_u8(out, 22);
        put_u16(out, 0x0301);
        put_u16(out, (unsigned)n);
        put(out, hs->data + off, n);
    }
}

static size_t want; /* the last call's *want_bytes */

static enum tls_hello_result parse_len(const unsigned char *data, size_t len, bool *h2)
{
    return tls_hello_offers_h2(data, len, h2, &want);
}

static enum tls_hello_result parse(const struct bytes *b, bool *h2)
{
    return parse_len(b->data, b->len, h2);
}

#define ALPN_H2_H1 "\x02h2\x08http/1.1"
#define ALPN_H1 "\x08http/1.1"

static void test_alpn_offers(void)
{
    struct bytes hs, wire;
    bool h2 = false;
    client_hello(&hs, ALPN_H2_H1, sizeof(ALPN_H2_H1) - 1, 10, 1);
    records(&wire, &hs, 16384);
    CHECK(parse(&wire, &h2) == TLS_HELLO_PARSED && h2);

    client_hello(&hs, ALPN_H1, sizeof(ALPN_H1) - 1, 10, 1);
    records(&wire, &hs, 16384);
    CHECK(parse(&wire, &h2) == TLS_HELLO_PARSED && !h2);

    /* only the exact token "h2" counts: not h2c, h2-14 or a longer name starting with h2 */
    client_hello(&hs, "\x03h2c\x05h2-14\x03h2x", 14, 0, 1);
    records(&wire, &hs, 16384);
    CHECK(parse(&wire, &h2) == TLS_HELLO_PARSED && !h2);

    client_hello(&hs, NULL, 0, 5, 1);
    records(&wire, &hs, 16384);
    CHECK(parse(&wire, &h2) == TLS_HELLO_PARSED && !h2);

    client_hello(&hs, NULL, 0, 0, 0); /* no extensions block at all */
    records(&wire, &hs, 16384);
    CHECK(parse(&wire, &h2) == TLS_HELLO_PARSED && !h2);
}

static void test_every_split_point_is_incomplete(void)
{
    struct bytes hs, wire;
    bool h2;
    client_hello(&hs, ALPN_H2_H1, sizeof(ALPN_H2_H1) - 1, 300, 1);
    records(&wire, &hs, 16384);
    int wrong = 0, wrong_want = 0;
    size_t record_end = wire.len; /* one record: the whole hello */
    for (size_t len = 0; len < wire.len; len++) {
        if (parse_len(wire.data, len, &h2) != TLS_HELLO_INCOMPLETE)
            wrong++;
        /* it asks for exactly what it needs next: the record header, then the whole record */
        if (want != (len < 5 ? 5 : record_end))
            wrong_want++;
    }
    CHECK(wrong == 0);
    CHECK(wrong_want == 0);
    /* and bytes after the hello (the client's next flight) do not change the answer */
    put_u8(&wire, 20);
    CHECK(parse(&wire, &h2) == TLS_HELLO_PARSED && h2);
}

static void test_hello_across_records(void)
{
    struct bytes hs, wire;
    bool h2 = false;
    client_hello(&hs, ALPN_H2_H1, sizeof(ALPN_H2_H1) - 1, 2000, 1);
    for (size_t record_max = 1; record_max <= 1024; record_max *= 4) {
        records(&wire, &hs, record_max);
        h2 = false;
        CHECK(parse(&wire, &h2) == TLS_HELLO_PARSED && h2);
        CHECK(parse_len(wire.data, wire.len - 1, &h2) == TLS_HELLO_INCOMPLETE && want == wire.len);
    }
}

static void test_refusals(void)
{
    struct bytes hs, wire;
    bool h2;
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(parse_len((const unsigned char *)http, strlen(http), &h2) == TLS_HELLO_UNPARSABLE);
    /* not TLS from the first byte: refused at once, not waited for */
    CHECK(parse_len((const unsigned char *)http, 1, &h2) == TLS_HELLO_UNPARSABLE);
    unsigned char tls_then_garbage[] = {22, 9};
    CHECK(parse_len(tls_then_garbage, 2, &h2) == TLS_HELLO_UNPARSABLE);
    /* a record longer than TLS allows is not waited for either */
    unsigned char huge_record[] = {22, 3, 1, 0xff, 0xff, 1, 0, 0};
    CHECK(parse_len(huge_record, sizeof(huge_record), &h2) == TLS_HELLO_UNPARSABLE);

    client_hello(&hs, ALPN_H2_H1, sizeof(ALPN_H2_H1) - 1, 0, 1);
    hs.data[0] = 2; /* ServerHello */
    records(&wire, &hs, 16384);
    CHECK(parse(&wire, &h2) == TLS_HELLO_UNPARSABLE);

    /* a hello larger than the limit */
    client_hello(&hs, ALPN_H2_H1, sizeof(ALPN_H2_H1) - 1, TLS_HELLO_MAX_BYTES, 1);
    records(&wire, &hs, 16384);
    CHECK(parse(&wire, &h2) == TLS_HELLO_UNPARSABLE);

    /* an extensions length that runs past the end of the hello */
    client_hello(&hs, ALPN_H2_H1, sizeof(ALPN_H2_H1) - 1, 0, 1);
    size_t ext_len_at = 4 + 2 + 32 + 1 + 32 + 2 + 4 + 2;
    hs.data[ext_len_at] = 0x7f;
    records(&wire, &hs, 16384);
    CHECK(parse(&wire, &h2) == TLS_HELLO_UNPARSABLE);

    /* a zero-length record */
    unsigned char empty_record[] = {22, 3, 1, 0, 0};
    CHECK(parse_len(empty_record, sizeof(empty_record), &h2) == TLS_HELLO_UNPARSABLE);
}

int main(void)
{
    RUN(test_alpn_offers);
    RUN(test_every_split_point_is_incomplete);
    RUN(test_hello_across_records);
    RUN(test_refusals);
    return unit_finish();
}
