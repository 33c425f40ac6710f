#include "h2o_frontend.h"

#include <h2o/http1.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "fault_h2o.h"
#include "h2o_glue.h"
#include "h2o_limits.h"
#include "http1_parse.h"
#include "request_core.h"
#include "tls.h"

/* The h2o handler, registered in both global configurations; `control_only` tells them apart. */
struct mock_handler {
    h2o_handler_t super;
    bool control_only;
};

/* A benchmark response waiting for its delay. Allocated from the request's pool so that h2o's
 * disposal of the request (stream reset, connection closed) reaches on_held_dispose. */
struct h2o_held {
    struct delay_entry entry;
    h2o_timeout_entry_t fault_now; /* a fault due at once runs from h2o's zero timeout, not inside on_req */
    h2o_generator_t partial;       /* FAULT_PARTIAL: ends the stream once half the body is out */
    /* a paced body (dribble=, rate=): h2o asks for each next part through `pacer`, the delay queue
     * says when it is due; a part goes when both have happened */
    h2o_generator_t pacer;
    struct delay_entry next_part;
    uint64_t head_sent_ns;         /* CLOCK_MONOTONIC: parts are due from it */
    uint32_t parts_sent;
    bool h2o_ready;                /* h2o called proceed since the last send */
    bool part_due;                 /* the next part's time came (or could not be queued) before that */
    h2o_req_t *req;
    struct h2o_frontend *frontend;
    enum listener_kind listener;
    struct handler_response response;
};

/* One connection h2o serves (HTTP/2 ones, few next to the lean loop's HTTP/1.1 ones, which pay for
 * nothing like it): why it will close when the server decided it, and when its age runs out. h2o's
 * socket carries it as its on_close data. */
struct h2o_conn_record {
    const struct request_core_listener *listener;
    uint64_t age_deadline_ns; /* CLOCK_MONOTONIC; 0 without --max-connection-age */
    uint8_t close_reason;     /* enum stats_close_reason: STATS_CLOSE_OTHER (h2o's own reason) until the server decides */
};

static h2o_generator_t single_shot_generator = {NULL, NULL};

static void on_connection_close(void *data);
static void pace_start(struct h2o_held *held);

static struct h2o_conn_record *record_of(h2o_req_t *req)
{
    return fault_h2o_close_data(req, on_connection_close);
}

/* Records why the connection will close (the first reason wins). */
static void record_close_reason(h2o_req_t *req, enum stats_close_reason reason)
{
    struct h2o_conn_record *record = record_of(req);
    if (record != NULL && record->close_reason == STATS_CLOSE_OTHER)
        record->close_reason = (uint8_t)reason;
}

#define H2O_BODY_CAP_MAX_BYTES (1024ull * 1024 * 1024)

static size_t h2o_body_cap_bytes(uint64_t max_body_bytes)
{
    uint64_t cap = max_body_bytes * 4 + 1024 * 1024;
    return (size_t)(cap < H2O_BODY_CAP_MAX_BYTES ? cap : H2O_BODY_CAP_MAX_BYTES);
}

static struct h2o_frontend *frontend_of(h2o_req_t *req, const struct mock_handler *handler)
{
    if (handler->control_only)
        return H2O_STRUCT_FROM_MEMBER(struct h2o_frontend, control_ctx, req->conn->ctx);
    return H2O_STRUCT_FROM_MEMBER(struct h2o_frontend, benchmark_ctx, req->conn->ctx);
}

static enum stats_protocol protocol_of(const h2o_req_t *req)
{
    return req->version >= 0x200 ? STATS_PROTOCOL_HTTP2 : STATS_PROTOCOL_HTTP1;
}

static enum listener_kind listener_of(const h2o_req_t *req, const struct mock_handler *handler)
{
    if (handler->control_only)
        return LISTENER_STATS;
    return req->scheme == &H2O_URL_SCHEME_HTTPS ? LISTENER_TLS : LISTENER_HTTP;
}

/* Sends `res` on `req` and counts it. The body must outlive the send: benchmark bodies live in the
 * config; rendered ones are copied into the request's pool. A paced body needs `held` (with `res`
 * being held->response), else it is sent whole. */
static void send_response(struct h2o_frontend *frontend, h2o_req_t *req, enum listener_kind listener,
                          const struct handler_response *res, struct h2o_held *held)
{
    req->res.status = res->status;
    req->res.reason = res->reason;
    /* 204 and 304: no Content-Length (RFC 9110 8.6) and no DATA */
    req->res.content_length = res->no_body ? SIZE_MAX : res->body_len;
    if (!res->no_body)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, res->content_type, strlen(res->content_type));
    if (res->allow != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, res->allow, strlen(res->allow));
    if (res->retry_after_s != 0) {
        char *value = h2o_mem_alloc_pool(&req->pool, 16);
        int len = snprintf(value, 16, "%" PRIu32, res->retry_after_s);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, value, (size_t)len);
    }
    if (res->server_timing) {
        char *value = h2o_mem_alloc_pool(&req->pool, 48);
        int len = snprintf(value, 48, "delay;dur=%" PRIu64 ".%03" PRIu64, res->delay_ns / 1000000, res->delay_ns / 1000 % 1000);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("server-timing"), 0, NULL, value, (size_t)len);
    }

    h2o_iovec_t body = h2o_iovec_init(res->body, res->body_len);
    if (res->body_source == HANDLER_BODY_TEXT && res->body_len != 0) { /* benchmark and fill bodies never move */
        body.base = h2o_mem_alloc_pool(&req->pool, res->body_len);
        memcpy(body.base, res->body, res->body_len);
    }
    /* a refused body is not counted as received, as on the HTTP/1.1 path */
    struct request_core_outcome outcome = {.protocol = protocol_of(req), .listener = listener, .response = res,
                                           .request_body_bytes = res->status == 413 ? 0 : req->entity.len,
                                           .response_body_bytes = res->is_head ? 0 : res->body_len};
    request_core_count(frontend->core, &outcome);

    if (held != NULL && res == &held->response && res->pace.parts != 0 && !res->is_head && !res->no_body &&
        res->body_source != HANDLER_BODY_TEXT) {
        pace_start(held);
        return;
    }
    h2o_start_response(req, &single_shot_generator);
    if (res->is_head || res->no_body)
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

/* ---- paced bodies (dribble=, rate=) ---- */

static void pace_queue_next(struct h2o_held *held)
{
    uint64_t offset_ns = handler_pace_part_due_ns(&held->response.pace, held->parts_sent + 1);
    if (request_core_pace(held->frontend->core, &held->next_part, held->head_sent_ns, offset_ns) != 0)
        held->part_due = true; /* out of memory in the queue: the part goes as soon as h2o asks */
}

/* Hands h2o the next part (the last one ends the stream). Nothing of `held` may be used after the
 * last part: the request may be disposed of. */
static void pace_send_part(struct h2o_held *held)
{
    const struct handler_response *res = &held->response;
    size_t from = handler_pace_part_end(&res->pace, res->body_len, held->parts_sent);
    size_t to = handler_pace_part_end(&res->pace, res->body_len, ++held->parts_sent);
    bool last = held->parts_sent == res->pace.parts;
    held->h2o_ready = false;
    held->part_due = false;
    if (!last)
        pace_queue_next(held);
    h2o_iovec_t part = h2o_iovec_init(res->body + from, to - from);
    h2o_send(held->req, &part, 1, last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_part_due(struct delay_entry *entry, uint64_t now_ns)
{
    struct h2o_held *held = H2O_STRUCT_FROM_MEMBER(struct h2o_held, next_part, entry);
    h2o_glue_clock_refresh(held->frontend->loop); /* called from the delay queue, outside h2o's loop */
    if (held->h2o_ready)
        pace_send_part(held);
    else
        held->part_due = true; /* the client reads slower than the pace: the part goes when h2o asks */
}

static void on_pace_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    struct h2o_held *held = H2O_STRUCT_FROM_MEMBER(struct h2o_held, pacer, generator);
    held->h2o_ready = true;
    if (held->part_due)
        pace_send_part(held);
}

static void on_pace_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    struct h2o_held *held = H2O_STRUCT_FROM_MEMBER(struct h2o_held, pacer, generator);
    request_core_pace_stop(held->frontend->core, &held->next_part);
}

/* Sends the head (HEADERS with content-length of the whole body) now; the parts follow. */
static void pace_start(struct h2o_held *held)
{
    held->pacer = (h2o_generator_t){on_pace_proceed, on_pace_stop};
    held->next_part.on_due = on_part_due;
    held->head_sent_ns = clock_monotonic_ns();
    held->parts_sent = 0;
    pace_queue_next(held);
    h2o_start_response(held->req, &held->pacer);
    h2o_send(held->req, NULL, 0, H2O_SEND_STATE_IN_PROGRESS);
}

/* ---- faults: carried out instead of the response, on that stream only (close: its connection) ---- */

/* garbage: the body is not what the head announces (fewer bytes than content-length), which makes
 * the response malformed (RFC 9113 8.1.1) on that stream alone */
static const char fault_garbage_body[] = "\x01MOCKUPSTREAM FAULT garbage \x00\xff\xfe this is not HTTP\r\n";

static void on_hang_timeout(struct delay_entry *entry, uint64_t now_ns)
{
    struct h2o_held *held = H2O_STRUCT_FROM_MEMBER(struct h2o_held, entry, entry);
    h2o_glue_clock_refresh(held->frontend->loop);
    request_core_hang_over(held->frontend->core);
    if (!fault_h2o_reset_stream(held->req)) {
        /* HTTP/1 through h2o: end the response with an error, which closes the connection */
        h2o_start_response(held->req, &single_shot_generator);
        h2o_send(held->req, NULL, 0, H2O_SEND_STATE_ERROR);
    }
}

static void on_partial_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    /* half the body is written: the stream ends with RST_STREAM (h2o sends one for an error state) */
    h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
}

/* Carries out held->response.fault. The request may be disposed of before this returns (reset,
 * close): nothing of `held` may be used afterwards. */
static void carry_out_fault(struct h2o_held *held)
{
    struct h2o_frontend *frontend = held->frontend;
    h2o_req_t *req = held->req;
    const struct handler_response *res = &held->response;
    enum fault_kind kind = (enum fault_kind)res->fault;
    if (kind == FAULT_HANG) {
        held->entry.on_due = on_hang_timeout;
        request_core_hang(frontend->core, &held->entry, clock_monotonic_ns());
        return;
    }
    request_core_fault(frontend->core, kind);
    switch (kind) {
    case FAULT_RESET:
        if (fault_h2o_reset_stream(req))
            return;
        break;
    case FAULT_CLOSE:
        record_close_reason(req, STATS_CLOSE_FAULT);
        if (fault_h2o_goaway(req, "mockupstream fault: close", true))
            return;
        break;
    case FAULT_PARTIAL: {
        req->res.status = res->status;
        req->res.reason = res->reason;
        req->res.content_length = res->body_len;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, res->content_type, strlen(res->content_type));
        held->partial.proceed = on_partial_proceed;
        h2o_start_response(req, &held->partial);
        size_t half = res->is_head ? 0 : res->body_len / 2;
        if (half == 0) {
            h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
            return;
        }
        h2o_iovec_t body = h2o_iovec_init(res->body, half);
        if (res->body_source == HANDLER_BODY_TEXT) {
            body.base = h2o_mem_alloc_pool(&req->pool, half);
            memcpy(body.base, res->body, half);
        }
        h2o_send(req, &body, 1, H2O_SEND_STATE_IN_PROGRESS);
        return;
    }
    case FAULT_GARBAGE: {
        req->res.status = 200;
        req->res.reason = "OK";
        req->res.content_length = sizeof(fault_garbage_body) - 1 + 16;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/octet-stream"));
        h2o_iovec_t body = h2o_iovec_init(fault_garbage_body, sizeof(fault_garbage_body) - 1);
        h2o_start_response(req, &single_shot_generator);
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
        return;
    }
    default:
        break;
    }
    /* HTTP/1 through h2o (or a connection already closing): an error ends the response and the
     * connection, the nearest h2o 2.2.5 has to a reset or a close */
    record_close_reason(req, STATS_CLOSE_FAULT);
    h2o_start_response(req, &single_shot_generator);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
}

static void on_fault_now(h2o_timeout_entry_t *entry)
{
    carry_out_fault(H2O_STRUCT_FROM_MEMBER(struct h2o_held, fault_now, entry));
}

static void on_held_due(struct delay_entry *entry, uint64_t now_ns)
{
    struct h2o_held *held = H2O_STRUCT_FROM_MEMBER(struct h2o_held, entry, entry);
    /* called from the delay queue, outside h2o's loop: without this, Date would be as old as the hold */
    h2o_glue_clock_refresh(held->frontend->loop);
    request_core_release(held->frontend->core, entry, STATS_ARRIVAL_HANDLER, now_ns);
    if (held->response.fault != FAULT_NONE) {
        carry_out_fault(held);
        return;
    }
    send_response(held->frontend, held->req, held->listener, &held->response, held);
}

static void on_held_dispose(void *p)
{
    struct h2o_held *held = p;
    if (held->entry.on_due == on_hang_timeout)
        request_core_hang_cancel(held->frontend->core, &held->entry);
    else
        request_core_cancel(held->frontend->core, &held->entry); /* only if still held */
    request_core_pace_stop(held->frontend->core, &held->next_part);
    if (h2o_timeout_is_linked(&held->fault_now))
        h2o_timeout_unlink(&held->fault_now);
    handler_response_release(&held->response);
}

/* Answers `text` with `status` at once: a refusal is never held for the delay. */
static void refuse(struct h2o_frontend *frontend, h2o_req_t *req, enum listener_kind listener, int status, const char *text,
                   size_t text_len)
{
    struct handler_response refusal;
    handler_response_text(&refusal, listener == LISTENER_STATS ? HANDLER_KIND_CONTROL : HANDLER_KIND_BENCHMARK, status,
                          text, h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")));
    refusal.body_len = text_len;
    send_response(frontend, req, listener, &refusal, NULL);
}

static bool is_connection_specific(const h2o_iovec_t *name)
{
    /* RFC 9113 8.2.2, and HTTP2-Settings, which only means something on an HTTP/1.1 Upgrade */
    return name == &H2O_TOKEN_CONNECTION->buf || name == &H2O_TOKEN_KEEP_ALIVE->buf || name == &H2O_TOKEN_TRANSFER_ENCODING->buf ||
           name == &H2O_TOKEN_UPGRADE->buf || name == &H2O_TOKEN_HTTP2_SETTINGS->buf ||
           h2o_memis(name->base, name->len, H2O_STRLIT("proxy-connection"));
}

/* What h2o 2.2.5 does not check on an HTTP/2 request, or checked by ending the whole connection (see
 * h2o_glue_init). Each finding is counted once per request. Returns 0 to serve the request (a
 * connection-specific field is ignored, as nginx does), or the status to refuse it with and the text
 * naming the problem. */
static int http2_request_check(struct request_core *core, h2o_req_t *req, const char **text, size_t *text_len)
{
    const char *header_list_refusal = h2o_glue_header_list_refusal(req, text_len);
    if (header_list_refusal != NULL) {
        request_core_violation(core, STATS_VIOLATION_HTTP2_HEADER_LIST_TOO_LARGE);
        *text = header_list_refusal;
        return 431;
    }
    bool connection_specific = false, te_not_trailers = false, has_host = false;
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *field = &req->headers.entries[i];
        if (field->name == &H2O_TOKEN_TE->buf)
            te_not_trailers |= !h2o_lcstris(field->value.base, field->value.len, H2O_STRLIT("trailers"));
        else if (field->name == &H2O_TOKEN_HOST->buf)
            has_host |= field->value.len != 0;
        else
            connection_specific |= is_connection_specific(field->name);
    }
    bool missing_authority = (h2o_glue_authority_was_absent(req) || req->input.authority.len == 0) && !has_host;
    bool empty_path = req->input.path.len == 0;
    if (connection_specific)
        request_core_violation(core, STATS_VIOLATION_HTTP2_CONNECTION_SPECIFIC_HEADER);
    if (te_not_trailers)
        request_core_violation(core, STATS_VIOLATION_HTTP2_TE_NOT_TRAILERS);
    if (missing_authority)
        request_core_violation(core, STATS_VIOLATION_HTTP2_MISSING_AUTHORITY);
    if (empty_path)
        request_core_violation(core, STATS_VIOLATION_HTTP2_EMPTY_PATH);
    if (empty_path)
        *text = "bad request: empty :path (RFC 9113 8.3.1: it must not be empty for http or https URIs)\n";
    else if (missing_authority)
        *text = "bad request: neither :authority nor host (RFC 9113 8.3.1: the request must name its host)\n";
    else if (te_not_trailers)
        *text = "bad request: te other than \"trailers\" (RFC 9113 8.2.2: it is the only value allowed in HTTP/2)\n";
    else
        return 0;
    *text_len = strlen(*text);
    return 400;
}

/* When the request's HEADERS arrived, on the monotonic clock, never after `now_ns`. h2o stamps a
 * stream when its HEADERS are processed with its cached wall clock (request_begin_at), whose value
 * may have been read up to a millisecond before the frame arrived (the cache is refreshed when h2o's
 * millisecond clock ticks): the stamp is moved that millisecond later, so a delay that runs from it
 * (--delay-from head) is never early, at the cost of being up to 1 ms late. */
static uint64_t head_arrival_of(const h2o_req_t *req, uint64_t now_ns)
{
    const struct timeval *tv = &req->timestamps.request_begin_at;
    if (tv->tv_sec == 0 && tv->tv_usec == 0)
        return now_ns;
    uint64_t stamp_wall_ns = (uint64_t)tv->tv_sec * NS_PER_SEC + (uint64_t)tv->tv_usec * NS_PER_US + NS_PER_MS;
    uint64_t wall_ns = clock_realtime_ns();
    uint64_t age_ns = wall_ns > stamp_wall_ns ? wall_ns - stamp_wall_ns : 0;
    return age_ns < now_ns ? now_ns - age_ns : now_ns;
}

/* The X-Mock-* fields of the request (the first of each counts, as on HTTP/1.1 and in the query). */
static struct request_controls controls_of(const h2o_req_t *req)
{
    struct request_controls controls = {0};
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *field = &req->headers.entries[i];
        request_controls_keep_first(&controls, request_control_of_header(field->name->base, field->name->len),
                                    field->value.base, field->value.len);
    }
    return controls;
}

/* --max-requests-per-connection and --max-connection-age on HTTP/2: GOAWAY naming the last stream
 * opened, with this request still answered; h2o closes the connection once its streams are done. */
static void apply_connection_limits(struct h2o_frontend *frontend, h2o_req_t *req)
{
    const struct config *cfg = frontend->core->config;
    struct h2o_conn_record *record = record_of(req);
    if (record == NULL || record->close_reason != STATS_CLOSE_OTHER)
        return;
    enum stats_close_reason reason;
    if (cfg->max_requests_per_connection != 0 && fault_h2o_streams_opened(req) >= cfg->max_requests_per_connection)
        reason = STATS_CLOSE_MAX_REQUESTS;
    else if (record->age_deadline_ns != 0 && clock_monotonic_ns() >= record->age_deadline_ns)
        reason = STATS_CLOSE_MAX_AGE;
    else
        return;
    if (fault_h2o_goaway(req, reason == STATS_CLOSE_MAX_REQUESTS ? "max requests per connection" : "max connection age", false))
        record->close_reason = (uint8_t)reason;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    const struct mock_handler *handler = (const struct mock_handler *)self;
    struct h2o_frontend *frontend = frontend_of(req, handler);
    struct request_core *core = frontend->core;
    enum listener_kind listener = listener_of(req, handler);
    /* h2o has read the whole request by now; when its last bytes arrived is not known here, so the
     * delay runs from this hand-over (lateness labelled "handler") */
    uint64_t arrival_ns = clock_monotonic_ns();
    uint64_t head_arrival_ns = head_arrival_of(req, arrival_ns);
    request_core_received(core, arrival_ns - head_arrival_ns);
    if (core->config->delay_from_head)
        arrival_ns = head_arrival_ns;
    if (req->version >= 0x200) {
        const char *text;
        size_t text_len;
        int status = http2_request_check(core, req, &text, &text_len);
        if (status != 0) {
            refuse(frontend, req, listener, status, text, text_len);
            return 0;
        }
    }
    if (frontend->connection_limits && req->version >= 0x200)
        apply_connection_limits(frontend, req);
    if (req->entity.len > core->config->max_body_bytes) {
        static const char too_large[] = "413 Payload Too Large: request body larger than --max-body-size\n";
        refuse(frontend, req, listener, 413, too_large, sizeof(too_large) - 1);
        return 0;
    }
    struct handler_request request = {.method = req->method.base, .method_len = req->method.len, .path = req->path.base,
                                      .path_len = req->path.len, .listener = listener, .headers = controls_of(req)};
    struct handler_response response;
    request_core_decide(core, &request, &response);

    /* held in the request's pool, so that h2o's disposal of the request (stream reset, connection
     * closed) reaches on_held_dispose and cancels the hold */
    struct h2o_held *held = NULL;
    if (response.delay_ns != 0 || response.fault != FAULT_NONE || response.pace.parts != 0) {
        held = h2o_mem_alloc_shared(&req->pool, sizeof(*held), on_held_dispose);
        memset(held, 0, sizeof(*held));
        held->req = req;
        held->frontend = frontend;
        held->listener = listener;
        held->entry.on_due = on_held_due;
    }
    switch (request_core_start(core, held ? &held->entry : NULL, &response, arrival_ns)) {
    case REQUEST_CORE_HELD:
        held->response = response; /* owns any rendered storage from here on */
        return 0;
    case REQUEST_CORE_SEND_NOW:
        if (response.fault != FAULT_NONE) {
            /* not from inside on_req: h2o still walks this stream when the handler returns */
            held->response = response;
            held->fault_now.cb = on_fault_now;
            h2o_timeout_link(frontend->loop, &frontend->benchmark_ctx.zero_timeout, &held->fault_now);
            return 0;
        }
        if (held != NULL) { /* a paced body: its description lives as long as the request */
            held->response = response;
            send_response(frontend, req, listener, &held->response, held);
            return 0;
        }
        break;
    case REQUEST_CORE_REFUSED:
        break;
    }
    send_response(frontend, req, listener, &response, NULL);
    handler_response_release(&response);
    return 0;
}

static void register_handler(h2o_globalconf_t *conf, const struct config *cfg, bool control_only)
{
    h2o_config_init(conf);
    conf->server_name = h2o_iovec_init(H2O_STRLIT("mockupstream"));
    /* Over HTTP/2, h2o 2.2.5 resets a stream whose body passes this limit with REFUSED_STREAM, which
     * tells clients to retry rather than report a 413. So h2o gets a larger hard cap (its buffer per
     * request) and on_req answers 413 for bodies between --max-body-size and the cap. */
    conf->max_request_entity_size = h2o_body_cap_bytes(cfg->max_body_bytes);
    /* h2o applies these only while no request is held: they bound idle keep-alive connections */
    conf->http1.req_timeout = cfg->idle_timeout_ns / NS_PER_MS;
    conf->http2.idle_timeout = cfg->idle_timeout_ns / NS_PER_MS;
    conf->http2.graceful_shutdown_timeout = cfg->drain_timeout_ns / NS_PER_MS;
    h2o_limits_configure(conf, cfg); /* streams per connection, TLS handshake timeout */
    h2o_hostconf_t *host = h2o_config_register_host(conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    struct mock_handler *handler = (struct mock_handler *)h2o_create_handler(path, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->control_only = control_only;
}

int h2o_frontend_shared_init(struct h2o_frontend_shared *shared, const struct config *cfg, char *err, size_t err_size)
{
    memset(shared, 0, sizeof(*shared));
    /* HTTP/2 header lists get the limits of the cleartext HTTP/1.1 head (name + value bytes) */
    if (h2o_glue_init(HTTP1_MAX_HEAD_BYTES, HTTP1_MAX_HEADERS, err, err_size) != 0)
        return -1;
    register_handler(&shared->benchmark_conf, cfg, false);
    register_handler(&shared->control_conf, cfg, true);
    if (cfg->tls_cert_path != NULL) {
        shared->ssl_ctx = tls_context_create(cfg->tls_cert_path, cfg->tls_key_path, err, err_size);
        if (shared->ssl_ctx == NULL) {
            h2o_frontend_shared_dispose(shared);
            return -1;
        }
    }
    return 0;
}

void h2o_frontend_shared_dispose(struct h2o_frontend_shared *shared)
{
    h2o_config_dispose(&shared->benchmark_conf);
    h2o_config_dispose(&shared->control_conf);
    if (shared->ssl_ctx != NULL)
        SSL_CTX_free(shared->ssl_ctx);
}

static void on_epoll_readable(struct ev_loop *loop, ev_io *watcher, int revents)
{
    struct h2o_frontend *frontend = watcher->data;
    h2o_glue_run_until_idle(frontend->loop);
}

static void on_h2o_timeout(struct ev_loop *loop, ev_timer *watcher, int revents)
{
    struct h2o_frontend *frontend = watcher->data;
    h2o_glue_run_until_idle(frontend->loop);
}

int h2o_frontend_init(struct h2o_frontend *frontend, struct ev_loop *ev_loop, struct request_core *core,
                      struct h2o_frontend_shared *shared, char *err, size_t err_size)
{
    memset(frontend, 0, sizeof(*frontend));
    frontend->ev_loop = ev_loop;
    frontend->core = core;
    frontend->loop = h2o_evloop_create();
    frontend->connection_limits = core->config->max_requests_per_connection != 0 || core->config->max_connection_age_ns != 0;
    h2o_context_init(&frontend->benchmark_ctx, frontend->loop, &shared->benchmark_conf);
    h2o_context_init(&frontend->control_ctx, frontend->loop, &shared->control_conf);

    frontend->accept_ctx[LISTENER_HTTP] = (h2o_accept_ctx_t){.ctx = &frontend->benchmark_ctx,
                                                                   .hosts = shared->benchmark_conf.hosts};
    frontend->accept_ctx[LISTENER_TLS] = (h2o_accept_ctx_t){
        .ctx = &frontend->benchmark_ctx, .hosts = shared->benchmark_conf.hosts, .ssl_ctx = shared->ssl_ctx};
    frontend->accept_ctx[LISTENER_STATS] = (h2o_accept_ctx_t){.ctx = &frontend->control_ctx,
                                                                    .hosts = shared->control_conf.hosts};

    int epoll_fd;
    if (h2o_glue_epoll_fd(frontend->loop, &epoll_fd, err, err_size) != 0)
        return -1;
    ev_io_init(&frontend->epoll_watcher, on_epoll_readable, epoll_fd, EV_READ);
    frontend->epoll_watcher.data = frontend;
    ev_io_start(ev_loop, &frontend->epoll_watcher);
    ev_init(&frontend->timeout_watcher, on_h2o_timeout);
    frontend->timeout_watcher.data = frontend;
    return 0;
}

static void on_connection_close(void *data)
{
    struct h2o_conn_record *record = data;
    struct request_core *core = record->listener->core;
    enum stats_close_reason reason = (enum stats_close_reason)record->close_reason;
    if (reason == STATS_CLOSE_OTHER && core->draining)
        reason = STATS_CLOSE_DRAIN;
    request_core_connection_closed(core, record->listener->kind, reason);
    free(record);
}

/* h2o's socket for fd, carrying the connection's record; NULL (fd closed, the close counted) if out of
 * memory. */
static h2o_socket_t *socket_for(struct h2o_frontend *frontend, int fd, enum listener_kind kind)
{
    struct h2o_conn_record *record = malloc(sizeof(*record));
    if (record == NULL) {
        close(fd);
        request_core_connection_closed(frontend->core, kind, STATS_CLOSE_OTHER);
        return NULL;
    }
    /* the listener entry is the core's, which outlives every connection */
    *record = (struct h2o_conn_record){.listener = &frontend->core->listeners[kind], .close_reason = STATS_CLOSE_OTHER};
    uint64_t age_ns = request_core_connection_age_limit_ns(frontend->core);
    if (age_ns != 0)
        record->age_deadline_ns = clock_monotonic_ns() + age_ns;
    h2o_socket_t *sock = h2o_evloop_socket_create(frontend->loop, fd, 0);
    sock->on_close.cb = on_connection_close;
    sock->on_close.data = record;
    return sock;
}

void h2o_frontend_accept(struct h2o_frontend *frontend, int fd, enum listener_kind kind)
{
    /* h2o_accept arms the TLS handshake timeout (or HTTP/1's request timeout) from h2o's clock */
    h2o_glue_clock_refresh(frontend->loop);
    h2o_socket_t *sock = socket_for(frontend, fd, kind);
    if (sock != NULL)
        h2o_accept(&frontend->accept_ctx[kind], sock);
}

void h2o_frontend_adopt(struct h2o_frontend *frontend, int fd, enum listener_kind kind, const char *bytes, size_t len)
{
    h2o_glue_clock_refresh(frontend->loop);
    h2o_socket_t *sock = socket_for(frontend, fd, kind);
    if (sock == NULL)
        return;
    if (len != 0) {
        h2o_iovec_t room = h2o_buffer_reserve(&sock->input, len);
        memcpy(room.base, bytes, len);
        sock->input->size += len;
    }
    struct timeval connected_at;
    gettimeofday(&connected_at, NULL);
    /* h2o's HTTP/1 connection parses what is already buffered first: it sees the preface or the
     * Upgrade request and switches to HTTP/2 itself */
    h2o_http1_accept(&frontend->accept_ctx[kind], sock, connected_at);
}

void h2o_frontend_flush(struct h2o_frontend *frontend)
{
    h2o_glue_clock_refresh(frontend->loop);
    /* one walk of h2o's timeout lists per loop iteration when h2o has nothing to do (most of them:
     * it runs every iteration, HTTP/2 in use or not) */
    uint64_t wait_ms = h2o_glue_next_timeout_ms(frontend->loop);
    if (wait_ms == 0 || h2o_glue_has_pending_io(frontend->loop)) {
        h2o_glue_run_until_idle(frontend->loop);
        wait_ms = h2o_glue_next_timeout_ms(frontend->loop);
    }
    if (wait_ms == UINT64_MAX) {
        ev_timer_stop(frontend->ev_loop, &frontend->timeout_watcher);
        return;
    }
    /* +1 ms: h2o's clock has millisecond resolution, waking early would find nothing due */
    double after = (double)(wait_ms + 1) / 1000.0;
    if (!ev_is_active(&frontend->timeout_watcher) || ev_timer_remaining(frontend->ev_loop, &frontend->timeout_watcher) > after) {
        ev_timer_stop(frontend->ev_loop, &frontend->timeout_watcher);
        ev_timer_set(&frontend->timeout_watcher, after, 0.);
        ev_timer_start(frontend->ev_loop, &frontend->timeout_watcher);
    }
}

static int compare_ids(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(const void *const *)a, y = (uintptr_t)*(const void *const *)b;
    return x < y ? -1 : x > y;
}

/* Remembers which HTTP/2 connections were open when the drain began: those get h2o's two GOAWAYs.
 * Out of memory, nothing is remembered and the drain does not wait for them (as before it did). */
static void snapshot_drain_connections(struct h2o_frontend *frontend)
{
    size_t benchmark = h2o_glue_http2_connections(&frontend->benchmark_ctx, NULL, 0);
    size_t control = h2o_glue_http2_connections(&frontend->control_ctx, NULL, 0);
    if (benchmark + control == 0 || frontend->drain_connections != NULL)
        return;
    frontend->drain_connections = malloc((benchmark + control) * sizeof(*frontend->drain_connections));
    if (frontend->drain_connections == NULL)
        return;
    h2o_glue_http2_connections(&frontend->benchmark_ctx, frontend->drain_connections, benchmark);
    h2o_glue_http2_connections(&frontend->control_ctx, frontend->drain_connections + benchmark, control);
    frontend->drain_connection_count = benchmark + control;
    qsort(frontend->drain_connections, frontend->drain_connection_count, sizeof(*frontend->drain_connections), compare_ids);
}

void h2o_frontend_request_shutdown(struct h2o_frontend *frontend)
{
    /* the final GOAWAY of each HTTP/2 connection follows on a 1 s timer armed from h2o's clock */
    h2o_glue_clock_refresh(frontend->loop);
    h2o_context_request_shutdown(&frontend->benchmark_ctx);
    h2o_context_request_shutdown(&frontend->control_ctx);
    snapshot_drain_connections(frontend);
}

size_t h2o_frontend_draining_connections(struct h2o_frontend *frontend)
{
    if (frontend->drain_connections == NULL)
        return 0;
    size_t open = 0;
    h2o_context_t *contexts[] = {&frontend->benchmark_ctx, &frontend->control_ctx};
    for (size_t i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++) {
        for (h2o_linklist_t *node = contexts[i]->http2._conns.next; node != &contexts[i]->http2._conns; node = node->next) {
            const void *id = node;
            open += bsearch(&id, frontend->drain_connections, frontend->drain_connection_count, sizeof(id), compare_ids) != NULL;
        }
    }
    return open;
}

bool h2o_frontend_drained(struct h2o_frontend *frontend)
{
    /* h2o keeps its connections oldest first, so once the oldest is not one of the snapshot, none is */
    h2o_context_t *contexts[] = {&frontend->benchmark_ctx, &frontend->control_ctx};
    for (size_t i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++) {
        const void *oldest = h2o_glue_http2_oldest_connection(contexts[i]);
        if (oldest != NULL && frontend->drain_connections != NULL &&
            bsearch(&oldest, frontend->drain_connections, frontend->drain_connection_count, sizeof(oldest), compare_ids) != NULL)
            return false;
    }
    return true;
}
