#include "tls_hello.h"

#include <stdint.h>
#include <string.h>

#define RECORD_HEADER_BYTES 5
#define RECORD_TYPE_HANDSHAKE 22
#define HANDSHAKE_TYPE_CLIENT_HELLO 1
#define EXTENSION_ALPN 16

/* A bounds-checked reader over the reassembled ClientHello body. */
struct reader {
    const unsigned char *p, *end;
    bool failed;
};

static unsigned read_u8(struct reader *r)
{
    if (r->end - r->p < 1) {
        r->failed = true;
        return 0;
    }
    return *r->p++;
}

static unsigned read_u16(struct reader *r)
{
    unsigned hi = read_u8(r);
    return (hi << 8) | read_u8(r);
}

/* Takes `n` bytes as a sub-reader. */
static struct reader take(struct reader *r, size_t n)
{
    struct reader sub = {r->p, r->p, r->failed};
    if (r->failed || (size_t)(r->end - r->p) < n) {
        r->failed = sub.failed = true;
        return sub;
    }
    sub.end = r->p + n;
    r->p += n;
    return sub;
}

static bool alpn_list_has_h2(struct reader list)
{
    while (list.p < list.end && !list.failed) {
        unsigned len = read_u8(&list);
        struct reader name = take(&list, len);
        if (!name.failed && len == 2 && memcmp(name.p, "h2", 2) == 0)
            return true;
    }
    return false;
}

/* Parses a whole ClientHello body (after the 4-byte handshake header). */
static enum tls_hello_result parse_client_hello(struct reader body, bool *offers_h2)
{
    take(&body, 2 + 32);                   /* legacy_version, random */
    take(&body, read_u8(&body));           /* legacy_session_id */
    take(&body, read_u16(&body));          /* cipher_suites */
    take(&body, read_u8(&body));           /* legacy_compression_methods */
    if (body.failed)
        return TLS_HELLO_UNPARSABLE;
    *offers_h2 = false;
    if (body.p == body.end)
        return TLS_HELLO_PARSED; /* no extensions at all (old clients): no ALPN */
    struct reader extensions = take(&body, read_u16(&body));
    while (extensions.p < extensions.end && !extensions.failed) {
        unsigned type = read_u16(&extensions);
        struct reader data = take(&extensions, read_u16(&extensions));
        if (type == EXTENSION_ALPN && !data.failed) {
            struct reader list = take(&data, read_u16(&data));
            *offers_h2 = !list.failed && alpn_list_has_h2(list);
        }
    }
    return extensions.failed || body.failed ? TLS_HELLO_UNPARSABLE : TLS_HELLO_PARSED;
}

enum tls_hello_result tls_hello_offers_h2(const unsigned char *buf, size_t len, bool *offers_h2, size_t *want_bytes)
{
    /* Reassemble handshake bytes from consecutive handshake records until the ClientHello is whole. */
    unsigned char hello[4 + TLS_HELLO_MAX_BYTES];
    size_t have = 0, need = 4; /* the handshake header first, then its stated length */
    size_t off = 0;
    *offers_h2 = false;
    *want_bytes = 0;
    while (have < need) {
        if (len - off < RECORD_HEADER_BYTES) {
            *want_bytes = off + RECORD_HEADER_BYTES;
            /* what has come of the header must already look like TLS: do not wait on garbage */
            if ((len > off && buf[off] != RECORD_TYPE_HANDSHAKE) || (len > off + 1 && buf[off + 1] != 3))
                return TLS_HELLO_UNPARSABLE;
            return TLS_HELLO_INCOMPLETE;
        }
        const unsigned char *record = buf + off;
        size_t record_len = ((size_t)record[3] << 8) | record[4];
        if (record[0] != RECORD_TYPE_HANDSHAKE || record[1] != 3 || record_len == 0 || record_len > TLS_HELLO_MAX_RECORD_BYTES)
            return TLS_HELLO_UNPARSABLE;
        if (len - off - RECORD_HEADER_BYTES < record_len) {
            *want_bytes = off + RECORD_HEADER_BYTES + record_len;
            return TLS_HELLO_INCOMPLETE;
        }
        const unsigned char *payload = record + RECORD_HEADER_BYTES;
        for (size_t i = 0; i < record_len && have < need; i++) {
            hello[have++] = payload[i];
            if (have == 4) {
                if (hello[0] != HANDSHAKE_TYPE_CLIENT_HELLO)
                    return TLS_HELLO_UNPARSABLE;
                size_t body_len = ((size_t)hello[1] << 16) | ((size_t)hello[2] << 8) | hello[3];
                if (body_len > TLS_HELLO_MAX_BYTES)
                    return TLS_HELLO_UNPARSABLE;
                need = 4 + body_len;
            }
        }
        off += RECORD_HEADER_BYTES + record_len;
    }
    struct reader body = {hello + 4, hello + need, false};
    return parse_client_hello(body, offers_h2);
}
