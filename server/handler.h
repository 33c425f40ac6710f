/* handler: what to answer, independent of the protocol that carries the request.
 *
 * Both protocol paths (h2o for HTTP/2, the lean HTTP/1.1 loop for cleartext and TLS) parse a request, call
 * handler_route() with its method and path, and then carry out the answer it describes: wait
 * `delay_ns` (benchmark requests only) and send `status`, `content_type` and the body. Keeping the
 * routing here means both paths answer every path, method and error the same way.
 *
 * The request-target a protocol path hands over is origin-form ("/p?q", raw as received) or "*"
 * (OPTIONS only); HTTP/1 reduces an absolute-form target to origin-form in its parser (http1_parse.h).
 * Anything else (an empty or absolute HTTP/2 :path, "*" with another method) gets 400, CONNECT 501.
 * The path (not the query) is percent-decoded here, once for every protocol, before it is matched
 * against the routes: a malformed escape or %00 gets 400. Every escape decodes, %2F included
 * ("/wait%2F5" is "/wait/5", as nginx treats it); query values are decoded when read.
 *
 * Benchmark answers (unless --no-request-control): each of delay, status and body size is taken from
 * the first of these that names it, else drawn from its flag (--delay, --status, --body-size):
 *   path    /wait/<ms> (decimals: /wait/0.25), /delay/<duration> (a bare number is seconds, as on
 *           httpbin), /status/<spec>;
 *   query   delay=<spec>, status=<spec>, size=<spec>;
 *   header  X-Mock-Delay, X-Mock-Status, X-Mock-Size.
 * Paced bodies: dribble=<parts>/<duration> (X-Mock-Dribble) sends the head when the delay ends and
 * the body in that many parts, the last at head + duration; rate=<bytes/s> (X-Mock-Rate) does the
 * same in parts of max(1, rate/100) bytes (one every 10 ms from 100 B/s up), so the body takes
 * body/rate. Parts are clamped to the body's bytes; the whole must fit in --max-delay; the two
 * cannot be combined; HEAD, bodiless statuses and faults are not paced.
 * Faults (fault.h): fault=<kinds> in the query, else X-Mock-Fault, else --fault, drawn per request
 * into res->fault; without --allow-faults a request naming one gets 403, a malformed one 400. Control
 * paths never carry a fault.
 * <spec> is distribution.h's syntax (a value, a weighted list, a distribution); a weighted list's
 * rest goes to the flag's value. A malformed or out-of-range spec gets 400 naming the parameter and
 * where it came from. Delays are capped by --max-delay, sizes by --max-response-size, and a status
 * is 200-599 (204 and 304 carry no body). */
#ifndef MOCKUPSTREAM_HANDLER_H
#define MOCKUPSTREAM_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "body_fill.h"
#include "config.h"
#include "fault.h"
#include "prng.h"
#include "request_controls.h"
#include "spec_cache.h"
#include "stats.h"
#include "strbuf.h"

/* One worker's routing state. */
struct handler_context {
    const struct config *config;
    const struct stats_segment *stats;
    struct prng *rng;        /* the worker's random stream: delays, statuses and sizes drawn per request */
    struct body_fill *fill;  /* bodies of other sizes than the configured one */
    struct spec_cache *specs; /* the worker's recently parsed specs (NULL: parse every time) */
};

/* Longest percent-decoded path or query value the router reads (a stack buffer): a /status/ or
 * delay= spec longer than this once decoded gets 400. Specs without '%' are read in place, any
 * length. */
#define HANDLER_DECODE_MAX_BYTES 1024

struct handler_request {
    const char *method;
    size_t method_len;
    const char *path; /* request target in origin-form (or "*"), with query, not yet percent-decoded */
    size_t path_len;
    enum listener_kind listener; /* LISTENER_STATS serves control paths only */
    struct request_controls headers; /* X-Mock-* fields, as the path found them */
};

/* Who the answer is for, which decides how it is counted. */
enum handler_kind {
    HANDLER_KIND_BENCHMARK, /* a benchmark request (any status): counted in requests_total, held for delay_ns */
    HANDLER_KIND_CONTROL,   /* /stats, /metrics, /healthz, or an error about them: counted apart, never held */
};

/* How a paced body is spread (handler_pace_part_*); parts == 0: sent whole with the head. */
struct handler_pace {
    uint32_t parts;
    uint64_t duration_ns; /* from the head to the last part */
};

/* Where the body comes from. */
enum handler_body {
    HANDLER_BODY_BENCHMARK, /* the configured body (config->body), shared by every response, immutable */
    HANDLER_BODY_TEXT,      /* rendered or static text in body/body_len, valid until handler_response_release */
    HANDLER_BODY_FILL,      /* body_len bytes of the worker's fill (body_fill.h): immutable, never freed */
};

/* The answer, described once for every protocol path: each path carries out exactly this (hold for
 * delay_ns, then send status, headers and body) and counts it with request_core_count(). */
struct handler_response {
    enum handler_kind kind;
    int status;
    const char *reason;
    bool is_head;          /* send headers only (Content-Length still that of the body) */
    uint64_t delay_ns;     /* hold this long from the request's arrival (0 for control answers) */
    enum handler_body body_source;
    const char *body;      /* the bytes of body_source */
    size_t body_len;
    const char *content_type;
    const char *allow;     /* value of an Allow header (405), else NULL */
    bool no_body;          /* 204 or 304 (RFC 9110 6.4.1): neither body nor Content-Length */
    bool server_timing;    /* send Server-Timing: delay;dur=<delay_ns in ms> (--server-timing) */
    uint8_t fault;         /* enum fault_kind: after the delay, carry out this fault instead of sending (FAULT_NONE: send) */
    bool refusal;          /* an error about the request itself: answered at once, whatever the load */
    uint32_t retry_after_s; /* send Retry-After: <s> (0: none) */
    struct handler_pace pace; /* parts > 0: the body goes in parts after the head (dribble=, rate=) */
    struct strbuf rendered; /* owned storage for rendered documents and error texts */
};

/* True for the answer most requests get: 200 with the configured body and no extra header. The lean
 * HTTP/1.1 path sends it from a preformatted head. */
static inline bool handler_response_is_default_benchmark(const struct handler_response *res)
{
    return res->kind == HANDLER_KIND_BENCHMARK && res->status == 200 && res->body_source == HANDLER_BODY_BENCHMARK &&
           res->allow == NULL && !res->server_timing && res->fault == FAULT_NONE && res->pace.parts == 0;
}

/* Paced bodies (dribble=, rate=): part k of parts (k = 1..parts) is the body's bytes
 * [handler_pace_part_end(k - 1), handler_pace_part_end(k)), due handler_pace_part_due_ns(k) after the
 * head was sent. Part sizes differ by at most one byte; the last part ends the body and is due
 * duration_ns after the head. */
static inline size_t handler_pace_part_end(const struct handler_pace *pace, size_t body_len, uint32_t k)
{
    return (size_t)((unsigned __int128)body_len * k / pace->parts);
}

static inline uint64_t handler_pace_part_due_ns(const struct handler_pace *pace, uint32_t k)
{
    return (uint64_t)((unsigned __int128)pace->duration_ns * k / pace->parts);
}

/* The default benchmark answer (handler_response_is_default_benchmark), rebuilt where a path kept
 * nothing of it (a held default response keeps no description). */
void handler_response_default(struct handler_response *res, const struct config *config, bool is_head);

/* A refusal or error text answered at once: `status` with `text` (static, not copied) as its body. */
void handler_response_text(struct handler_response *res, enum handler_kind kind, int status, const char *text, bool is_head);

/* Decides the answer to one request. Never fails: bad requests get a 4xx description. */
void handler_route(const struct handler_context *ctx, const struct handler_request *req, struct handler_response *res);

/* Frees what handler_route rendered. The response must not be used afterwards. */
void handler_response_release(struct handler_response *res);

/* The reason phrase for a status code this server sends. */
const char *handler_reason_phrase(int status);

#endif
