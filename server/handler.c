#include "handler.h"

#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "duration.h"
#include "stats_render.h"

#define TEXT_PLAIN "text/plain"
#define PROMETHEUS_TEXT "text/plain; version=0.0.4; charset=utf-8"

static bool bytes_equal(const char *a, size_t a_len, const char *b)
{
    size_t b_len = strlen(b);
    return a_len == b_len && memcmp(a, b, b_len) == 0;
}

const char *handler_reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static void answer_text(struct handler_response *res, int status, const char *text)
{
    res->status = status;
    res->reason = handler_reason_phrase(status);
    res->content_type = TEXT_PLAIN;
    strbuf_clear(&res->rendered);
    strbuf_append_str(&res->rendered, text);
    res->body = res->rendered.data;
    res->body_len = res->rendered.len;
}

/* The value of `name` in a query string ("a=1&format=json"), or NULL. */
static const char *query_param(const char *query, size_t query_len, const char *name, size_t *value_len)
{
    size_t name_len = strlen(name);
    const char *p = query, *end = query + query_len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *item_end = amp ? amp : end;
        if ((size_t)(item_end - p) > name_len && memcmp(p, name, name_len) == 0 && p[name_len] == '=') {
            *value_len = (size_t)(item_end - p - (ptrdiff_t)name_len - 1);
            return p + name_len + 1;
        }
        p = item_end + 1;
    }
    return NULL;
}

enum control_path { CONTROL_NONE, CONTROL_STATS, CONTROL_METRICS, CONTROL_HEALTHZ };

static enum control_path control_path_of(const char *path, size_t path_len)
{
    if (bytes_equal(path, path_len, "/stats"))
        return CONTROL_STATS;
    if (bytes_equal(path, path_len, "/metrics"))
        return CONTROL_METRICS;
    if (bytes_equal(path, path_len, "/healthz"))
        return CONTROL_HEALTHZ;
    return CONTROL_NONE;
}

static void route_control(const struct handler_context *ctx, const struct handler_request *req, enum control_path which,
                          const char *query, size_t query_len, struct handler_response *res)
{
    res->is_control = true;
    res->delay_ns = 0;
    if (!res->is_head && !bytes_equal(req->method, req->method_len, "GET")) {
        res->allow = "GET, HEAD";
        answer_text(res, 405, "method not allowed: control paths answer GET and HEAD\n");
        return;
    }
    switch (which) {
    case CONTROL_HEALTHZ:
        answer_text(res, 200, "ok\n");
        return;
    case CONTROL_METRICS:
        stats_render_prometheus(ctx->stats, &res->rendered);
        res->content_type = PROMETHEUS_TEXT;
        break;
    case CONTROL_STATS: {
        size_t format_len = 0;
        const char *format = query ? query_param(query, query_len, "format", &format_len) : NULL;
        if (format == NULL || bytes_equal(format, format_len, "json")) {
            stats_render_json(ctx->stats, &res->rendered);
            res->content_type = "application/json";
        } else if (bytes_equal(format, format_len, "prometheus")) {
            stats_render_prometheus(ctx->stats, &res->rendered);
            res->content_type = PROMETHEUS_TEXT;
        } else {
            answer_text(res, 400, "bad format: allowed format=json or format=prometheus\n");
            return;
        }
        break;
    }
    case CONTROL_NONE:
        break;
    }
    if (res->rendered.failed) {
        answer_text(res, 500, "out of memory rendering stats\n");
        return;
    }
    res->status = 200;
    res->reason = "OK";
    res->body = res->rendered.data ? res->rendered.data : "";
    res->body_len = res->rendered.len;
}

/* "/wait/<ms>" with an optional query: sets *delay_ns, or answers 400 and returns false. */
static bool parse_wait(const struct handler_context *ctx, const char *path, size_t path_len, struct handler_response *res,
                       uint64_t *delay_ns)
{
    const char *digits = path + strlen("/wait/");
    size_t digits_len = path_len - strlen("/wait/");
    /* one message for both: a number too large to parse is also above the limit */
    if (duration_parse_wait_ms(digits, digits_len, delay_ns) != 0 || *delay_ns > ctx->config->max_delay_ns) {
        char max_text[32], text[128];
        snprintf(text, sizeof(text), "bad /wait/<ms>: allowed a whole number of milliseconds up to --max-delay %s\n",
                 duration_format(ctx->config->max_delay_ns, max_text, sizeof(max_text)));
        answer_text(res, 400, text);
        return false;
    }
    return true;
}

_Static_assert(HANDLER_ROUTE_PATH_MAX_BYTES > sizeof("/wait/") - 1 + DURATION_WAIT_MS_MAX_DIGITS,
               "a decoded path cut to the buffer must be longer than every route");

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes path[0..len) (RFC 3986 2.1) into out[0..out_size), stopping the copy there but not
 * the checks. Returns the decoded length (which may exceed out_size: then only a prefix is in out),
 * or -1 for a '%' not followed by two hex digits or an escape decoding to NUL (which would cut the
 * path short for any C code that sees it later). */
static ssize_t path_decode(const char *path, size_t len, char *out, size_t out_size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++, n++) {
        char c = path[i];
        if (c == '%') {
            int hi = len - i >= 3 ? hex_value(path[i + 1]) : -1, lo = hi >= 0 ? hex_value(path[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (n < out_size)
            out[n] = c;
    }
    return (ssize_t)n;
}

void handler_route(const struct handler_context *ctx, const struct handler_request *req, struct handler_response *res)
{
    memset(res, 0, sizeof(*res));
    strbuf_init(&res->rendered);
    res->is_head = bytes_equal(req->method, req->method_len, "HEAD");
    res->is_control = req->listener == STATS_LISTENER_STATS;

    /* RFC 9110 9.3.6: a tunnel is a proxy's job. HTTP/1.1 refuses CONNECT in its parser (and closes);
     * this answers it on the paths that reach the router (HTTP/2). */
    if (bytes_equal(req->method, req->method_len, "CONNECT")) {
        answer_text(res, 501, "CONNECT is not supported: mockupstream is an origin server, not a proxy\n");
        return;
    }
    /* Only origin-form reaches the router ("*" with OPTIONS aside): HTTP/1 reduces absolute-form to
     * it, and HTTP/2's :path is origin-form or "*" (RFC 9113 8.3.1); an empty :path lands here too. */
    bool asterisk = req->path_len == 1 && req->path[0] == '*';
    if (asterisk ? !bytes_equal(req->method, req->method_len, "OPTIONS") : (req->path_len == 0 || req->path[0] != '/')) {
        answer_text(res, 400, "bad request-target: a path starting with '/' (or \"*\" with OPTIONS) is required\n");
        return;
    }

    const char *query_mark = memchr(req->path, '?', req->path_len);
    size_t path_len = query_mark ? (size_t)(query_mark - req->path) : req->path_len;
    const char *query = query_mark ? query_mark + 1 : NULL;
    size_t query_len = query_mark ? req->path_len - path_len - 1 : 0;

    /* Routes are matched on the decoded path ("/wai%74/5" is "/wait/5"). Decoding happens only when a
     * '%' is there (the benchmark path pays one memchr), into a stack buffer: the longest route,
     * "/wait/" and 12 digits, fits, and a longer path can equal no route (and makes a /wait/ number
     * too long to parse), so keeping only a prefix of it is safe. No allocation per request. */
    char decoded[HANDLER_ROUTE_PATH_MAX_BYTES];
    const char *path = req->path;
    if (memchr(path, '%', path_len) != NULL) {
        ssize_t decoded_len = path_decode(path, path_len, decoded, sizeof(decoded));
        if (decoded_len < 0) {
            answer_text(res, 400, "bad percent-encoding in path: '%' must start %HH, and %00 is refused\n");
            return;
        }
        path = decoded;
        path_len = (size_t)decoded_len < sizeof(decoded) ? (size_t)decoded_len : sizeof(decoded);
    }

    enum control_path which = control_path_of(path, path_len);
    if (which != CONTROL_NONE) {
        route_control(ctx, req, which, query, query_len, res);
        return;
    }
    if (req->listener == STATS_LISTENER_STATS) {
        res->is_control = true;
        answer_text(res, 404, "not found: this listener serves /stats, /metrics and /healthz\n");
        return;
    }

    uint64_t delay_ns = ctx->config->delay_ns;
    if (path_len >= strlen("/wait/") && memcmp(path, "/wait/", strlen("/wait/")) == 0 &&
        !parse_wait(ctx, path, path_len, res, &delay_ns))
        return;

    res->status = 200;
    res->reason = "OK";
    res->delay_ns = delay_ns;
    res->content_type = TEXT_PLAIN;
    res->body = ctx->config->body;
    res->body_len = ctx->config->body_bytes;
}

void handler_response_release(struct handler_response *res)
{
    strbuf_free(&res->rendered);
}
