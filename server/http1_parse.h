/* http1_parse: one HTTP/1.x request head, parsed and checked.
 *
 * picohttpparser finds the request line and headers; this adds the checks a benchmark upstream
 * needs and h2o 2.2.5 does not make (it answered 200 to conflicting Content-Length headers):
 * message framing (Content-Length vs Transfer-Encoding), header size, the request-target and Host
 * (RFC 9112 3.2), and the few headers the lean HTTP/1.1 loop acts on. Every listener that speaks
 * HTTP/1.1 on the project's own loop (cleartext and TLS) goes through this one function, so a
 * request is refused the same way, with the same status, whichever listener carried it.
 *
 * What is refused, and with what (the connection is closed after every refusal):
 *   400  a malformed request line or header line (obs-fold included), a method that is not a token,
 *        a version other than HTTP/1.0 and HTTP/1.1, a request-target that is not origin-form,
 *        absolute-form (http/https) or "*" with OPTIONS, a malformed percent escape or %00 in the path,
 *        userinfo or an empty host in an absolute-form target; HTTP/1.1 without Host, two Host
 *        lines, a Host value that is not host[:port] (RFC 3986 reg-name, IPv4 or [IP-literal]);
 *        Content-Length not a plain number, two different Content-Lengths, Transfer-Encoding twice,
 *        Transfer-Encoding together with Content-Length (smuggling), or on HTTP/1.0.
 *   414  a request line longer than HTTP1_MAX_REQUEST_LINE_BYTES.
 *   417  an Expect other than 100-continue.
 *   431  a head longer than HTTP1_MAX_HEAD_BYTES or more than HTTP1_MAX_HEADERS header lines.
 *   501  a Transfer-Encoding other than a single "chunked"; the CONNECT method (this is an origin
 *        server, not a proxy: the authority-form target CONNECT carries is never served).
 *
 * Request-target forms (RFC 9112 3.2): origin-form ("/p?q") is served as is; absolute-form
 * ("http://host:port/p?q") is reduced to its path and query, and its authority replaces Host
 * (3.2.2); asterisk-form ("*") only with OPTIONS (3.2.4); authority-form only with CONNECT (3.2.3),
 * which is refused. Characters of the target are otherwise as picohttpparser accepts them (no
 * control bytes, no spaces): bytes such as '|' or UTF-8 that real clients send unencoded are let
 * through, because a benchmark upstream should serve what clients send; only percent escapes are
 * checked, since the router decodes them (handler.h). */
#ifndef MOCKUPSTREAM_HTTP1_PARSE_H
#define MOCKUPSTREAM_HTTP1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "request_controls.h"

/* Largest request head accepted (request line, header lines and the blank line); a larger one gets
 * 431 Request Header Fields Too Large. */
#define HTTP1_MAX_HEAD_BYTES (64 * 1024)
/* Most header lines accepted; one more gets 431. */
#define HTTP1_MAX_HEADERS 100
/* Longest request line accepted: method SP request-target SP HTTP-version, without its CRLF (and
 * after the one empty line a client may send first). A longer one gets 414 URI Too Long, whether or
 * not the rest of the head has arrived; nginx's default (large_client_header_buffers 4 8k) draws the
 * line at the same size. It counts within HTTP1_MAX_HEAD_BYTES, which bounds the headers (431). */
#define HTTP1_MAX_REQUEST_LINE_BYTES 8192

enum http1_body_kind {
    HTTP1_BODY_NONE,
    HTTP1_BODY_LENGTH,
    HTTP1_BODY_CHUNKED,
};

/* A header field's value (OWS trimmed), pointing into the parsed buffer; NULL when absent. */
struct http1_field {
    const char *value;
    size_t len;
};

struct http1_request {
    const char *method;
    size_t method_len;
    const char *path;          /* origin-form path and query ("/a?b"), or "*" with OPTIONS; for an
                                  absolute-form target, its path and query ("http://h/a?b" -> "/a?b"),
                                  and "/" (a static string, the query dropped: it cannot matter to
                                  the route "/") when its path is empty */
    size_t path_len;
    const char *authority;     /* the absolute-form target's authority if there is one, else the Host
                                  value (OWS trimmed), else NULL; checked as host[:port] */
    size_t authority_len;
    int minor_version;         /* 0 or 1 */
    size_t head_bytes;         /* length of the head including the blank line */
    enum http1_body_kind body_kind;
    uint64_t content_length;   /* with HTTP1_BODY_LENGTH */
    bool keep_alive;           /* persistent after this request (version default, Connection header) */
    bool expect_continue;      /* Expect: 100-continue */
    bool upgrade_h2c;          /* Upgrade: h2c with HTTP2-Settings: hand the connection to HTTP/2 */
    const char *refusal_reason; /* with -1: why, one line for the answer's body (a static string) */
    struct request_controls controls; /* X-Mock-* fields (the first of each) */
};

/* The start of an HTTP/2 prior-knowledge connection preface. */
#define HTTP1_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

/* Parses the head at the start of buf[0..len).
 * Returns the head length (> 0) and fills *req; -2 if the head is incomplete (and still within
 * HTTP1_MAX_HEAD_BYTES and, while its request line is unfinished, HTTP1_MAX_REQUEST_LINE_BYTES); -1
 * if the request must be refused, with the status for it in *error_status (400, 414, 417, 431 or
 * 501, see above). Pointers in *req point into buf, except a path of "/" made for an absolute-form
 * target with an empty path. O(len): no allocation, and each check is one pass over its bytes. */
int http1_request_parse(const char *buf, size_t len, struct http1_request *req, int *error_status);

/* True if buf starts (as far as it goes) like the HTTP/2 connection preface. */
bool http1_looks_like_h2_preface(const char *buf, size_t len);

#endif
