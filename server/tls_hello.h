/* tls_hello: which protocols a TLS ClientHello offers through ALPN, read before any TLS work.
 *
 * A TLS connection goes either to the project's own HTTP/1.1 loop (OpenSSL driven here) or to
 * libh2o (HTTP/2). The choice has to be made before the first byte is consumed, since neither side
 * can take over a handshake the other has started: the worker peeks at the ClientHello (MSG_PEEK)
 * and parses just enough of it to find the ALPN extension (RFC 8446 4.1.2, RFC 7301 3.1). The
 * ClientHello may span several TLS records (RFC 8446 5.1); they are reassembled up to
 * TLS_HELLO_MAX_BYTES. Anything that does not parse is left to OpenSSL, which refuses it with a
 * proper alert. */
#ifndef MOCKUPSTREAM_TLS_HELLO_H
#define MOCKUPSTREAM_TLS_HELLO_H

#include <stdbool.h>
#include <stddef.h>

/* Largest ClientHello body looked at (real ones are 0.2-2 KiB; post-quantum key shares ~1.8 KiB). */
#define TLS_HELLO_MAX_BYTES (16 * 1024)
/* Largest TLS record (RFC 8446 5.1: 2^14 bytes of plaintext); a longer one is not TLS. */
#define TLS_HELLO_MAX_RECORD_BYTES 16384

enum tls_hello_result {
    TLS_HELLO_INCOMPLETE, /* the ClientHello is not all there yet: peek again once *want_bytes arrived */
    TLS_HELLO_PARSED,     /* *offers_h2 says whether "h2" is in the ALPN list */
    TLS_HELLO_UNPARSABLE, /* not a ClientHello we can read (not TLS, malformed, too large) */
};

/* Looks at the first `len` bytes a client sent. Never reads past buf[len). With
 * TLS_HELLO_INCOMPLETE, *want_bytes (> len) is how many bytes from the start must have arrived
 * before another look can get further: the end of the record header or record it stopped in. */
enum tls_hello_result tls_hello_offers_h2(const unsigned char *buf, size_t len, bool *offers_h2, size_t *want_bytes);

#endif
