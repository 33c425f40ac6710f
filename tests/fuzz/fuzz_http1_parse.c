/* libFuzzer harness: the HTTP/1 request head parser. Every pointer it returns must lie inside the
 * input (but the "/" made for an absolute-form target with an empty path), a parsed head can never
 * be longer than the input, and what reaches the router is origin-form or OPTIONS "*". */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http1_parse.h"

static int inside(const char *p, size_t len, const char *buf, size_t size)
{
    return p >= buf && p + len <= buf + size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http1_request req;
    int status = 0;
    int head = http1_request_parse(buf, size, &req, &status);
    if (head > 0) {
        assert((size_t)head <= size && req.head_bytes == (size_t)head);
        assert(inside(req.method, req.method_len, buf, size));
        assert(inside(req.path, req.path_len, buf, size) || (req.path_len == 1 && req.path[0] == '/'));
        assert(req.authority == NULL || inside(req.authority, req.authority_len, buf, size));
        assert(req.authority != NULL || req.minor_version == 0); /* HTTP/1.1 has a Host */
        assert(req.path_len > 0 && (req.path[0] == '/' || (req.path_len == 1 && req.path[0] == '*' &&
                                                           req.method_len == 7 && memcmp(req.method, "OPTIONS", 7) == 0)));
        assert(!(req.method_len == 7 && memcmp(req.method, "CONNECT", 7) == 0));
        assert(req.minor_version == 0 || req.minor_version == 1);
        assert(!(req.expect_continue && req.body_kind == HTTP1_BODY_NONE));
    } else if (head == -1) {
        assert(status == 400 || status == 414 || status == 417 || status == 431 || status == 501);
    } else {
        assert(head == -2 && size < HTTP1_MAX_HEAD_BYTES);
    }
    http1_looks_like_h2_preface(buf, size);
    return 0;
}
