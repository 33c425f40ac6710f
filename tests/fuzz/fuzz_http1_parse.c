/* libFuzzer harness: the HTTP/1 request head parser. Every pointer it returns must lie inside the
 * input, and a parsed head can never be longer than the input. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

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
        assert(inside(req.method, req.method_len, buf, size) && inside(req.path, req.path_len, buf, size));
        assert(req.minor_version == 0 || req.minor_version == 1);
        assert(!(req.expect_continue && req.body_kind == HTTP1_BODY_NONE));
    } else if (head == -1) {
        assert(status == 400 || status == 417 || status == 431 || status == 501);
    } else {
        assert(head == -2 && size < HTTP1_MAX_HEAD_BYTES);
    }
    http1_looks_like_h2_preface(buf, size);
    return 0;
}
