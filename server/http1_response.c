#include "http1_response.h"

#include <inttypes.h>
#include <string.h>

static void format_date(char *buf, size_t size, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void append_common_head(struct strbuf *b, int status, const char *reason, const char *date, const char *content_type,
                               size_t content_length, bool keep_alive)
{
    strbuf_appendf(b,
                   "HTTP/1.1 %d %s\r\nServer: mockupstream\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: %s\r\n",
                   status, reason, date, content_type, content_length, keep_alive ? "keep-alive" : "close");
}

/* 204 and 304 carry neither a body nor (204: must not, RFC 9110 8.6) a Content-Length. */
static void append_bodiless_head(struct strbuf *b, int status, const char *reason, const char *date, bool keep_alive)
{
    strbuf_appendf(b, "HTTP/1.1 %d %s\r\nServer: mockupstream\r\nDate: %s\r\nConnection: %s\r\n", status, reason, date,
                   keep_alive ? "keep-alive" : "close");
}

void http1_response_init(struct http1_response_cache *cache, const struct config *config)
{
    memset(cache, 0, sizeof(*cache));
    cache->config = config;
    cache->body_inline = config->body_bytes <= HTTP1_RESPONSE_INLINE_BODY_MAX_BYTES;
    strbuf_init(&cache->keep_alive);
    strbuf_init(&cache->close);
    strbuf_init(&cache->head);
}

/* Formats both variants of the default response for the current second (time() is a vDSO read). */
static void refresh_default(struct http1_response_cache *cache)
{
    time_t now = time(NULL);
    if (now == cache->date && cache->keep_alive.len != 0 && !cache->keep_alive.failed && !cache->close.failed)
        return;
    const struct config *cfg = cache->config;
    char date[64];
    format_date(date, sizeof(date), now);
    struct strbuf *variants[2] = {&cache->keep_alive, &cache->close};
    size_t *head_bytes[2] = {&cache->keep_alive_head_bytes, &cache->close_head_bytes};
    for (int i = 0; i < 2; i++) {
        strbuf_clear(variants[i]);
        variants[i]->failed = false;
        append_common_head(variants[i], 200, "OK", date, "text/plain", cfg->body_bytes, i == 0);
        strbuf_append(variants[i], "\r\n", 2);
        *head_bytes[i] = variants[i]->len;
        if (cache->body_inline)
            strbuf_append(variants[i], cfg->body, cfg->body_bytes);
    }
    cache->date = now;
}

struct http1_response_bytes http1_response_default(struct http1_response_cache *cache, bool keep_alive, bool is_head)
{
    refresh_default(cache);
    const struct config *cfg = cache->config;
    const struct strbuf *r = keep_alive ? &cache->keep_alive : &cache->close;
    size_t head_len = keep_alive ? cache->keep_alive_head_bytes : cache->close_head_bytes;
    size_t body_len = is_head ? 0 : cfg->body_bytes;
    if (r->failed) {
        /* out of memory formatting the preformatted one: a plain head is still possible below */
        struct handler_response res;
        handler_response_default(&res, cfg, is_head);
        struct http1_response_bytes out = {0};
        if (http1_response_format(cache, &res, keep_alive, &out) == 0)
            return out;
        return (struct http1_response_bytes){0};
    }
    if (cache->body_inline)
        return (struct http1_response_bytes){.head = r->data, .head_len = head_len + body_len};
    return (struct http1_response_bytes){.head = r->data, .head_len = head_len, .body = cfg->body, .body_len = body_len};
}

int http1_response_format(struct http1_response_cache *cache, const struct handler_response *res, bool keep_alive,
                          struct http1_response_bytes *out)
{
    char date[64];
    format_date(date, sizeof(date), time(NULL));
    struct strbuf *head = &cache->head;
    strbuf_clear(head);
    head->failed = false;
    if (res->no_body)
        append_bodiless_head(head, res->status, res->reason, date, keep_alive);
    else
        append_common_head(head, res->status, res->reason, date, res->content_type, res->body_len, keep_alive);
    if (res->allow != NULL)
        strbuf_appendf(head, "Allow: %s\r\n", res->allow);
    if (res->retry_after_s != 0)
        strbuf_appendf(head, "Retry-After: %" PRIu32 "\r\n", res->retry_after_s);
    if (res->server_timing)
        strbuf_appendf(head, "Server-Timing: delay;dur=%" PRIu64 ".%03" PRIu64 "\r\n", res->delay_ns / 1000000,
                       res->delay_ns / 1000 % 1000);
    strbuf_append(head, "\r\n", 2);
    if (head->failed)
        return -1;
    *out = (struct http1_response_bytes){.head = head->data, .head_len = head->len, .body = res->body,
                                         .body_len = res->is_head ? 0 : res->body_len};
    return 0;
}
