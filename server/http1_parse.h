/* http1_parse: one HTTP/1.x request head, parsed and checked.
 *
 * picohttpparser finds the request line and headers; this adds the checks a benchmark upstream
 * needs and h2o 2.2.5 does not make (it answered 200 to conflicting Content-Length headers):
 * message framing (Content-Length vs Transfer-Encoding), header size, and the few headers the lean
 * HTTP/1.1 loop acts on. */
#ifndef MOCKUPSTREAM_HTTP1_PARSE_H
#define MOCKUPSTREAM_HTTP1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest request head accepted; a larger one gets 431. */
#define HTTP1_MAX_HEAD_BYTES (64 * 1024)
#define HTTP1_MAX_HEADERS 100

enum http1_body_kind {
    HTTP1_BODY_NONE,
    HTTP1_BODY_LENGTH,
    HTTP1_BODY_CHUNKED,
};

struct http1_request {
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    int minor_version;         /* 0 or 1 */
    size_t head_bytes;         /* length of the head including the blank line */
    enum http1_body_kind body_kind;
    uint64_t content_length;   /* with HTTP1_BODY_LENGTH */
    bool keep_alive;           /* persistent after this request (version default, Connection header) */
    bool expect_continue;      /* Expect: 100-continue */
    bool upgrade_h2c;          /* Upgrade: h2c with HTTP2-Settings: hand the connection to HTTP/2 */
};

/* The start of an HTTP/2 prior-knowledge connection preface. */
#define HTTP1_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

/* Parses the head at the start of buf[0..len).
 * Returns the head length (> 0) and fills *req; -2 if the head is incomplete (and still within
 * HTTP1_MAX_HEAD_BYTES); -1 if the request must be refused, with the status for it in *error_status
 * (400, 417, 431 or 501). Pointers in *req point into buf. */
int http1_request_parse(const char *buf, size_t len, struct http1_request *req, int *error_status);

/* True if buf starts (as far as it goes) like the HTTP/2 connection preface. */
bool http1_looks_like_h2_preface(const char *buf, size_t len);

#endif
