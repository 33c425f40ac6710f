/* http1_response: HTTP/1.1 response heads, and the Date they carry.
 *
 * The default benchmark answer (handler_response_is_default_benchmark) depends only on the
 * configuration and the second, so it is preformatted once per second, head and (small) body
 * together, in a keep-alive and a close variant: sending it is one write() of bytes that already
 * exist. Any other answer gets its head formatted into one scratch buffer per worker, valid until the
 * next call. */
#ifndef MOCKUPSTREAM_HTTP1_RESPONSE_H
#define MOCKUPSTREAM_HTTP1_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "handler.h"
#include "strbuf.h"

/* Bodies up to this size are stored right after the preformatted head: one write() per response. */
#define HTTP1_RESPONSE_INLINE_BODY_MAX_BYTES (16 * 1024)

struct http1_response_cache {
    const struct config *config;
    struct strbuf keep_alive, close;     /* the default benchmark response, both variants */
    size_t keep_alive_head_bytes, close_head_bytes;
    bool body_inline;                    /* the body follows the head in both variants */
    time_t date;                         /* the second both variants were formatted for */
    struct strbuf head;                  /* scratch for any other head */
};

/* The bytes to write, as at most two pieces: head (and inline body) first, then the body. */
struct http1_response_bytes {
    const char *head;
    size_t head_len;
    const char *body; /* immutable for as long as the caller needs it (config body or the handler's) */
    size_t body_len;
};

void http1_response_init(struct http1_response_cache *cache, const struct config *config);

/* The default benchmark response (HEAD: without the body). Never fails. */
struct http1_response_bytes http1_response_default(struct http1_response_cache *cache, bool keep_alive, bool is_head);

/* Any response: its head formatted into the cache's scratch (valid until the next call) and its
 * body. Returns -1 if out of memory. */
int http1_response_format(struct http1_response_cache *cache, const struct handler_response *res, bool keep_alive,
                          struct http1_response_bytes *out);

#endif
