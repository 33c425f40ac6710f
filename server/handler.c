#include "handler.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "clock.h"
#include "distribution.h"
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
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 429: return "Too Many Requests";
    case 502: return "Bad Gateway";
    case 504: return "Gateway Timeout";
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
    default: return status >= 200 && status < 600 ? "" : "Unknown"; /* optional (RFC 9112 4): empty, as nginx sends */
    }
}

static void answer_text(struct handler_response *res, int status, const char *text)
{
    res->status = status;
    res->fault = FAULT_NONE; /* an error text is always answered */
    res->refusal = true;
    res->body_source = HANDLER_BODY_TEXT;
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
    res->kind = HANDLER_KIND_CONTROL;
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
    res->body_source = HANDLER_BODY_TEXT;
    res->body = res->rendered.data ? res->rendered.data : "";
    res->body_len = res->rendered.len;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes text[0..len) (RFC 3986 2.1) into out[0..out_size), stopping the copy there but not
 * the checks; with `plus_is_space` (query values, as forms send them) '+' decodes to a space.
 * Returns the decoded length (which may exceed out_size: then only a prefix is in out), or -1 for a
 * '%' not followed by two hex digits or an escape decoding to NUL (which would cut the text short
 * for any C code that sees it later). */
static ssize_t percent_decode(const char *text, size_t len, bool plus_is_space, char *out, size_t out_size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++, n++) {
        char c = text[i];
        if (c == '%') {
            int hi = len - i >= 3 ? hex_value(text[i + 1]) : -1, lo = hi >= 0 ? hex_value(text[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (n < out_size)
            out[n] = c;
    }
    return (ssize_t)n;
}

/* ---- benchmark answers: delay, status and size per request ---- */

enum control_source { CONTROL_FROM_PATH, CONTROL_FROM_QUERY, CONTROL_FROM_HEADER };

/* One control's text (NULL: not given), and where it was found (for the 400's wording). */
struct control_text {
    const char *text;
    size_t len;
    const char *name;   /* the path's form ("/wait/<ms>"), the query parameter or the header field */
    uint8_t source;     /* enum control_source; a query value is still percent-encoded */
};

/* The request's `control`: from the query (read once, in `query`) else from its X-Mock-* header, or
 * an empty control_text. */
static struct control_text control_of(const struct request_controls *query, const struct handler_request *req,
                                      enum request_control control)
{
    const struct request_control_value *v = &query->of[control];
    if (v->value != NULL)
        return (struct control_text){v->value, v->len, request_control_query_name(control), CONTROL_FROM_QUERY};
    v = &req->headers.of[control];
    if (v->value != NULL)
        return (struct control_text){v->value, v->len, request_control_header_name(control), CONTROL_FROM_HEADER};
    return (struct control_text){0};
}

/* "delay= in query", "X-Mock-Delay header", "/wait/<ms>": where the user wrote it. */
static const char *control_where(const struct control_text *control, char *buf, size_t size)
{
    if (control->source == CONTROL_FROM_PATH)
        return control->name;
    snprintf(buf, size, control->source == CONTROL_FROM_QUERY ? "%s= in query" : "%s header", control->name);
    return buf;
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* Renders "bad <where>: <why>" as a 400. */
static void answer_bad_control(struct handler_response *res, const struct control_text *control, const char *why)
{
    char text[DISTRIBUTION_ERROR_BYTES + 96], where[48];
    snprintf(text, sizeof(text), "bad %s: %s\n", control_where(control, where, sizeof(where)), why);
    strbuf_clear(&res->rendered);
    strbuf_append_str(&res->rendered, text);
    res->status = 400;
    res->fault = FAULT_NONE; /* a refusal is always answered */
    res->refusal = true;
    res->reason = handler_reason_phrase(400);
    res->content_type = TEXT_PLAIN;
    res->body_source = HANDLER_BODY_TEXT;
    res->body = res->rendered.data ? res->rendered.data : "";
    res->body_len = res->rendered.len;
    res->delay_ns = 0;
    res->no_body = false; /* a later control's refusal replaces a 204 drawn before it */
    res->pace.parts = 0;
}

/* The control's value: a query value percent-decoded into decoded[HANDLER_DECODE_MAX_BYTES] when it
 * has escapes, else read in place. Sets *text and *len. Returns false after answering 400. */
static bool control_value(const struct control_text *control, char *decoded, const char **text, size_t *len,
                          struct handler_response *res)
{
    *text = control->text;
    *len = control->len;
    if (control->source != CONTROL_FROM_QUERY || (memchr(*text, '%', *len) == NULL && memchr(*text, '+', *len) == NULL))
        return true;
    ssize_t n = percent_decode(*text, *len, true, decoded, HANDLER_DECODE_MAX_BYTES);
    if (n < 0 || (size_t)n > HANDLER_DECODE_MAX_BYTES) {
        answer_bad_control(res, control, "malformed or too long percent-encoding");
        return false;
    }
    *text = decoded;
    *len = (size_t)n;
    return true;
}

/* Parses one control into *d. A query value is percent-decoded first. Returns false after answering
 * 400. */
static bool control_parse(const struct handler_context *ctx, const struct control_text *control,
                          enum distribution_unit unit, uint64_t max, struct distribution *d, struct handler_response *res)
{
    char decoded[HANDLER_DECODE_MAX_BYTES];
    const char *text;
    size_t len;
    if (!control_value(control, decoded, &text, &len, res))
        return false;
    char why[DISTRIBUTION_ERROR_BYTES + 64];
    if (spec_cache_parse(ctx->specs, d, unit, text, len, max, why, DISTRIBUTION_ERROR_BYTES) != 0) {
        /* name the flag behind the limit, so the user knows what to raise */
        if ((unit == DISTRIBUTION_NS || unit == DISTRIBUTION_BYTES) && strstr(why, "maximum") != NULL)
            snprintf(why + strlen(why), sizeof(why) - strlen(why), " [limit: %s]",
                     unit == DISTRIBUTION_NS ? "--max-delay" : "--max-response-size");
        answer_bad_control(res, control, why);
        return false;
    }
    return true;
}

/* True if text[0..len) is non-empty and only digits and dots (the text is not NUL-terminated). */
static bool all_decimal(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((text[i] < '0' || text[i] > '9') && text[i] != '.')
            return false;
    return len > 0;
}

/* Draws from the request's spec if there is one (its rest weight falls to the flag's), else from the
 * flag's distribution. */
static uint64_t draw(const struct distribution *requested, const struct distribution *flag, bool flag_is_fixed,
                     uint64_t flag_value, struct prng *rng)
{
    uint64_t value;
    if (requested != NULL && distribution_draw(requested, rng, &value) == 0)
        return value;
    if (flag_is_fixed)
        return flag_value;
    return distribution_sample(flag, rng, flag_value);
}

/* Decides res->fault: fault= in the query, else X-Mock-Fault, else --fault. Returns false after
 * answering 403 (faults not allowed) or 400 (a malformed spec). Costs nothing unless one is named. */
static bool route_fault(const struct handler_context *ctx, const struct handler_request *req,
                        const struct request_controls *query, struct handler_response *res)
{
    const struct config *cfg = ctx->config;
    struct control_text fault = {0};
    if (cfg->request_control)
        fault = control_of(query, req, REQUEST_CONTROL_FAULT);
    if (fault.text == NULL) {
        if (cfg->fault.count != 0)
            res->fault = (uint8_t)fault_spec_draw(&cfg->fault, ctx->rng);
        return true;
    }
    if (!cfg->allow_faults) {
        char text[128], where[48];
        snprintf(text, sizeof(text), "faults are off: %s needs the server started with --allow-faults\n",
                 control_where(&fault, where, sizeof(where)));
        answer_text(res, 403, text);
        return false;
    }
    char decoded[HANDLER_DECODE_MAX_BYTES];
    const char *text;
    size_t len;
    if (!control_value(&fault, decoded, &text, &len, res))
        return false;
    struct fault_spec spec;
    char why[FAULT_ERROR_BYTES];
    if (fault_spec_parse(&spec, text, len, why, sizeof(why)) != 0) {
        answer_bad_control(res, &fault, why);
        return false;
    }
    res->fault = (uint8_t)fault_spec_draw(&spec, ctx->rng);
    return true;
}

/* Most parts dribble= may ask for (each part is a write and a timer). */
#define PACE_PARTS_MAX 1000000u
/* Parts closer than this are merged (dribble=1000000/3s goes as 3,000 parts). */
#define PACE_PART_MIN_GAP_NS NS_PER_MS
/* rate= sends a part per this interval (a part is at least one byte, so slower rates wait longer). */
#define PACE_RATE_TICK_NS (10 * NS_PER_MS)

/* Parses dribble=<parts>/<duration> into *parts and *duration_ns. Returns false after answering 400. */
static bool dribble_parse(const struct control_text *control, uint64_t max_ns, uint32_t *parts, uint64_t *duration_ns,
                          struct handler_response *res)
{
    char decoded[HANDLER_DECODE_MAX_BYTES];
    const char *text;
    size_t len;
    if (!control_value(control, decoded, &text, &len, res))
        return false;
    const char *slash = memchr(text, '/', len);
    uint64_t count = 0;
    size_t digits = slash ? (size_t)(slash - text) : 0;
    bool ok = slash != NULL && digits > 0 && digits <= 7;
    for (size_t i = 0; ok && i < digits; i++) {
        ok = text[i] >= '0' && text[i] <= '9';
        count = count * 10 + (uint64_t)(text[i] - '0');
    }
    ok = ok && count >= 1 && count <= PACE_PARTS_MAX &&
         duration_parse_ns(slash + 1, len - digits - 1, duration_ns) == 0 && *duration_ns <= max_ns;
    if (!ok) {
        char max_text[32], why[160];
        snprintf(why, sizeof(why), "allowed: <parts>/<duration>, parts 1..%u, duration up to --max-delay %s (e.g. 10/1s)",
                 PACE_PARTS_MAX, duration_format(max_ns, max_text, sizeof(max_text)));
        answer_bad_control(res, control, why);
        return false;
    }
    *parts = (uint32_t)count;
    return true;
}

/* Parses rate=<bytes per second> and turns it into parts and a duration for `body_bytes`. Returns
 * false after answering 400. */
static bool rate_parse(const struct control_text *control, uint64_t max_ns, uint64_t body_bytes, uint32_t *parts,
                       uint64_t *duration_ns, struct handler_response *res)
{
    char decoded[HANDLER_DECODE_MAX_BYTES];
    const char *text;
    size_t len;
    if (!control_value(control, decoded, &text, &len, res))
        return false;
    uint64_t rate = 0;
    if (size_parse_bytes(text, len, 1ull << 40, &rate) != 0 || rate == 0) {
        answer_bad_control(res, control, "allowed: bytes per second, 1 up to 1024g, with k, m or g (e.g. 64k)");
        return false;
    }
    uint64_t total_ns = (uint64_t)((unsigned __int128)body_bytes * NS_PER_SEC / rate);
    if (total_ns > max_ns) {
        char max_text[32], why[160];
        snprintf(why, sizeof(why), "the %" PRIu64 "-byte body would take longer than --max-delay %s at this rate", body_bytes,
                 duration_format(max_ns, max_text, sizeof(max_text)));
        answer_bad_control(res, control, why);
        return false;
    }
    /* parts of about one tick's worth of bytes: a rate from 100 B/s up sends every 10 ms */
    uint64_t part_bytes = (uint64_t)((unsigned __int128)rate * PACE_RATE_TICK_NS / NS_PER_SEC);
    if (part_bytes == 0)
        part_bytes = 1;
    uint64_t count = (body_bytes + part_bytes - 1) / part_bytes;
    *parts = (uint32_t)(count < UINT32_MAX ? count : UINT32_MAX);
    *duration_ns = total_ns;
    return true;
}

/* Decides res->pace from dribble= / rate= (query, else X-Mock-Dribble / X-Mock-Rate). Returns false
 * after answering 400. */
static bool route_pacing(const struct handler_context *ctx, const struct handler_request *req,
                         const struct request_controls *query, struct handler_response *res)
{
    struct control_text dribble = control_of(query, req, REQUEST_CONTROL_DRIBBLE);
    struct control_text rate = control_of(query, req, REQUEST_CONTROL_RATE);
    if (dribble.text == NULL && rate.text == NULL)
        return true;
    if (dribble.text != NULL && rate.text != NULL) {
        char why[128], where[48];
        snprintf(why, sizeof(why), "cannot be combined with %s: each sets the pace on its own",
                 control_where(&dribble, where, sizeof(where)));
        answer_bad_control(res, &rate, why);
        return false;
    }
    uint64_t max_ns = ctx->config->max_delay_ns, duration_ns = 0;
    uint32_t parts = 0;
    bool ok = dribble.text != NULL ? dribble_parse(&dribble, max_ns, &parts, &duration_ns, res)
                                   : rate_parse(&rate, max_ns, res->body_len, &parts, &duration_ns, res);
    if (!ok)
        return false;
    /* nothing to pace: a HEAD, a bodiless status, an empty body, a fault */
    if (res->is_head || res->no_body || res->body_len == 0 || res->fault != FAULT_NONE)
        return true;
    /* parts at least PACE_PART_MIN_GAP_NS apart, each at least a byte: a part is a write and a
     * timer wake-up, so a million parts in a second would cost the worker its core */
    uint64_t most_parts = duration_ns / PACE_PART_MIN_GAP_NS;
    if (most_parts == 0)
        most_parts = 1;
    if (most_parts > res->body_len)
        most_parts = res->body_len;
    res->pace.parts = parts < most_parts ? parts : (uint32_t)most_parts;
    res->pace.duration_ns = duration_ns;
    return true;
}

/* The benchmark answer. `path` is decoded (or raw when it had no '%'); the query is raw. */
static void route_benchmark(const struct handler_context *ctx, const struct handler_request *req, const char *path,
                            size_t path_len, const char *query, size_t query_len, struct handler_response *res)
{
    const struct config *cfg = ctx->config;
    /* the query is read once for every control (a benchmark's every request may carry one) */
    struct request_controls in_query = {0};
    if (cfg->request_control && query != NULL)
        request_controls_from_query(query, query_len, &in_query);
    if (!route_fault(ctx, req, &in_query, res))
        return;
    /* the three controls, first source wins: path, query, header */
    struct control_text delay = {0}, status = {0}, size = {0};
    bool delay_in_seconds = false, delay_in_ms = false; /* /delay/<n> (httpbin) and /wait/<n> bare numbers */
    if (cfg->request_control) {
        if (starts_with(path, path_len, "/wait/")) {
            delay = (struct control_text){path + 6, path_len - 6, "/wait/<ms>", CONTROL_FROM_PATH};
            delay_in_ms = true;
        } else if (starts_with(path, path_len, "/delay/")) {
            delay = (struct control_text){path + 7, path_len - 7, "/delay/<duration>", CONTROL_FROM_PATH};
            delay_in_seconds = true;
        } else if (starts_with(path, path_len, "/status/")) {
            status = (struct control_text){path + 8, path_len - 8, "/status/<code>", CONTROL_FROM_PATH};
        }
        if (delay.text == NULL)
            delay = control_of(&in_query, req, REQUEST_CONTROL_DELAY);
        if (status.text == NULL)
            status = control_of(&in_query, req, REQUEST_CONTROL_STATUS);
        size = control_of(&in_query, req, REQUEST_CONTROL_SIZE);
    }

    /* parse what was asked; ~660 bytes each on the stack, only when asked */
    struct distribution delay_spec, status_spec, size_spec;
    uint64_t delay_ns, status_code, body_bytes;
    if (delay.text != NULL && (delay_in_ms || delay_in_seconds) && all_decimal(delay.text, delay.len)) {
        /* a bare number: milliseconds on /wait/, seconds on /delay/ */
        uint64_t ms_ns;
        bool parsed = duration_parse_decimal_ms(delay.text, delay.len, &ms_ns) == 0 && (!delay_in_seconds || ms_ns <= UINT64_MAX / 1000);
        delay_ns = parsed && delay_in_seconds ? ms_ns * 1000 : ms_ns;
        if (!parsed || delay_ns > cfg->max_delay_ns) {
            char max_text[32], why[128];
            snprintf(why, sizeof(why), "allowed: a number of %s up to --max-delay %s (e.g. 25 or 0.25), or a delay spec",
                     delay_in_seconds ? "seconds" : "milliseconds", duration_format(cfg->max_delay_ns, max_text, sizeof(max_text)));
            answer_bad_control(res, &delay, why);
            return;
        }
    } else {
        if (delay.text != NULL && !control_parse(ctx, &delay, DISTRIBUTION_NS, cfg->max_delay_ns, &delay_spec, res))
            return;
        delay_ns = draw(delay.text ? &delay_spec : NULL, &cfg->delay, cfg->delay_is_fixed, cfg->delay_ns, ctx->rng);
    }
    if (status.text != NULL && !control_parse(ctx, &status, DISTRIBUTION_STATUS, 599, &status_spec, res))
        return;
    if (size.text != NULL && !control_parse(ctx, &size, DISTRIBUTION_BYTES, cfg->max_response_bytes, &size_spec, res))
        return;
    status_code = draw(status.text ? &status_spec : NULL, &cfg->status, cfg->status_is_fixed, cfg->status_code, ctx->rng);
    body_bytes = draw(size.text ? &size_spec : NULL, &cfg->body_size, cfg->body_size_is_fixed, cfg->body_bytes, ctx->rng);

    res->status = (int)status_code;
    res->reason = handler_reason_phrase(res->status);
    res->delay_ns = delay_ns;
    res->content_type = TEXT_PLAIN;
    res->server_timing = cfg->server_timing;
    res->no_body = res->status == 204 || res->status == 205 || res->status == 304; /* RFC 9110 15.3.5, 15.3.6, 15.4.5 */
    if (res->no_body) {
        res->body_source = HANDLER_BODY_TEXT;
        res->body = "";
        res->body_len = 0;
    } else if (body_bytes == cfg->body_bytes) {
        res->body_source = HANDLER_BODY_BENCHMARK;
        res->body = cfg->body;
        res->body_len = cfg->body_bytes;
    } else {
        res->body_source = HANDLER_BODY_FILL;
        res->body = body_fill_get(ctx->fill, body_bytes);
        res->body_len = body_bytes;
    }
    if (cfg->request_control)
        route_pacing(ctx, req, &in_query, res);
}

void handler_route(const struct handler_context *ctx, const struct handler_request *req, struct handler_response *res)
{
    memset(res, 0, sizeof(*res));
    strbuf_init(&res->rendered);
    res->is_head = bytes_equal(req->method, req->method_len, "HEAD");
    res->kind = req->listener == LISTENER_STATS ? HANDLER_KIND_CONTROL : HANDLER_KIND_BENCHMARK;

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
     * '%' is there (the benchmark path pays one memchr), into a stack buffer. A longer decoded path
     * can equal no fixed route, so its prefix is enough, unless it carries a spec (/wait/, /delay/,
     * /status/), which must be read whole: then it is refused. No allocation per request. */
    char decoded[HANDLER_DECODE_MAX_BYTES];
    const char *path = req->path;
    if (memchr(path, '%', path_len) != NULL) {
        ssize_t decoded_len = percent_decode(path, path_len, false, decoded, sizeof(decoded));
        if (decoded_len < 0) {
            answer_text(res, 400, "bad percent-encoding in path: '%' must start %HH, and %00 is refused\n");
            return;
        }
        path = decoded;
        path_len = (size_t)decoded_len < sizeof(decoded) ? (size_t)decoded_len : sizeof(decoded);
        if ((size_t)decoded_len > sizeof(decoded) && ctx->config->request_control &&
            (starts_with(path, path_len, "/wait/") || starts_with(path, path_len, "/delay/") ||
             starts_with(path, path_len, "/status/"))) {
            answer_text(res, 400, "bad path: a /wait/, /delay/ or /status/ spec longer than 1024 bytes once decoded\n");
            return;
        }
    }

    enum control_path which = control_path_of(path, path_len);
    if (which != CONTROL_NONE) {
        route_control(ctx, req, which, query, query_len, res);
        return;
    }
    if (req->listener == LISTENER_STATS) {
        res->kind = HANDLER_KIND_CONTROL;
        answer_text(res, 404, "not found: this listener serves /stats, /metrics and /healthz\n");
        return;
    }

    route_benchmark(ctx, req, path, path_len, query, query_len, res);
}

void handler_response_default(struct handler_response *res, const struct config *config, bool is_head)
{
    memset(res, 0, sizeof(*res));
    res->kind = HANDLER_KIND_BENCHMARK;
    res->status = 200;
    res->reason = handler_reason_phrase(200);
    res->is_head = is_head;
    res->content_type = TEXT_PLAIN;
    res->body_source = HANDLER_BODY_BENCHMARK;
    res->body = config->body;
    res->body_len = config->body_bytes;
}

void handler_response_text(struct handler_response *res, enum handler_kind kind, int status, const char *text, bool is_head)
{
    memset(res, 0, sizeof(*res));
    res->kind = kind;
    res->refusal = true;
    res->status = status;
    res->reason = handler_reason_phrase(status);
    res->is_head = is_head;
    res->content_type = TEXT_PLAIN;
    res->body_source = HANDLER_BODY_TEXT;
    res->body = text;
    res->body_len = strlen(text);
}

void handler_response_release(struct handler_response *res)
{
    if (res->rendered.data != NULL) /* most answers render nothing: no call into the allocator */
        strbuf_free(&res->rendered);
}
