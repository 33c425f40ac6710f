#include "h2o_frontend.h"

#include <h2o/http1.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <string.h>

#include "clock.h"
#include "h2o_glue.h"
#include "h2o_limits.h"
#include "handler.h"
#include "http1_parse.h"
#include "tls.h"
#include "worker.h"

/* The h2o handler, registered in both global configurations; `control_only` tells them apart. */
struct mock_handler {
    h2o_handler_t super;
    bool control_only;
};

/* A benchmark response waiting for its delay. Allocated from the request's pool so that h2o's
 * disposal of the request (stream reset, connection closed) reaches on_held_dispose. */
struct h2o_held {
    struct delay_entry entry;
    h2o_req_t *req;
    struct h2o_frontend *frontend;
    struct handler_response response;
};

static h2o_generator_t single_shot_generator = {NULL, NULL};

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

static int is_tls(const h2o_req_t *req)
{
    return req->scheme == &H2O_URL_SCHEME_HTTPS;
}

/* Sends `res` on `req` and counts it. The body must outlive the send: benchmark bodies live in the
 * config; rendered ones are copied into the request's pool. */
static void send_response(struct h2o_frontend *frontend, h2o_req_t *req, const struct handler_response *res)
{
    struct stats_worker_slot *slot = frontend->worker->slot;
    req->res.status = res->status;
    req->res.reason = res->reason;
    req->res.content_length = res->body_len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, res->content_type, strlen(res->content_type));
    if (res->allow != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, res->allow, strlen(res->allow));

    h2o_iovec_t body = h2o_iovec_init(res->body, res->body_len);
    if (res->body == res->rendered.data && res->body_len != 0) {
        body.base = h2o_mem_alloc_pool(&req->pool, res->body_len);
        memcpy(body.base, res->body, res->body_len);
    }
    if (res->is_control)
        stats_add(&slot->control_requests, 1);
    else
        /* a refused body is not counted as received, as on the HTTP/1.1 path */
        stats_request_done(slot, protocol_of(req), is_tls(req), res->status, res->status == 413 ? 0 : req->entity.len,
                           res->is_head ? 0 : res->body_len);

    h2o_start_response(req, &single_shot_generator);
    if (res->is_head)
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

static void on_held_due(struct delay_entry *entry, uint64_t now_ns)
{
    struct h2o_held *held = H2O_STRUCT_FROM_MEMBER(struct h2o_held, entry, entry);
    /* called from the delay queue, outside h2o's loop: without this, Date would be as old as the hold */
    h2o_glue_clock_refresh(held->frontend->loop);
    worker_hold_released(held->frontend->worker, entry, now_ns);
    send_response(held->frontend, held->req, &held->response);
}

static void on_held_dispose(void *p)
{
    struct h2o_held *held = p;
    if (delay_entry_is_queued(&held->entry))
        worker_hold_cancel(held->frontend->worker, &held->entry);
    handler_response_release(&held->response);
}

/* Answers `text` with `status` at once: a refusal is never held for the delay. */
static void refuse(struct h2o_frontend *frontend, h2o_req_t *req, bool control_only, int status, const char *text, size_t text_len)
{
    struct handler_response refusal = {.status = status, .reason = handler_reason_phrase(status), .is_control = control_only,
                                       .is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")),
                                       .content_type = "text/plain", .body = text, .body_len = text_len};
    send_response(frontend, req, &refusal);
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
static int http2_request_check(struct stats_worker_slot *slot, h2o_req_t *req, const char **text, size_t *text_len)
{
    const char *header_list_refusal = h2o_glue_header_list_refusal(req, text_len);
    if (header_list_refusal != NULL) {
        stats_add(&slot->protocol_violations[STATS_VIOLATION_HTTP2_HEADER_LIST_TOO_LARGE], 1);
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
        stats_add(&slot->protocol_violations[STATS_VIOLATION_HTTP2_CONNECTION_SPECIFIC_HEADER], 1);
    if (te_not_trailers)
        stats_add(&slot->protocol_violations[STATS_VIOLATION_HTTP2_TE_NOT_TRAILERS], 1);
    if (missing_authority)
        stats_add(&slot->protocol_violations[STATS_VIOLATION_HTTP2_MISSING_AUTHORITY], 1);
    if (empty_path)
        stats_add(&slot->protocol_violations[STATS_VIOLATION_HTTP2_EMPTY_PATH], 1);
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

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    const struct mock_handler *handler = (const struct mock_handler *)self;
    struct h2o_frontend *frontend = frontend_of(req, handler);
    struct worker *worker = frontend->worker;
    struct handler_request request = {
        .method = req->method.base,
        .method_len = req->method.len,
        .path = req->path.base,
        .path_len = req->path.len,
        .listener = handler->control_only ? STATS_LISTENER_STATS : (is_tls(req) ? STATS_LISTENER_TLS : STATS_LISTENER_HTTP),
    };
    struct handler_response response;
    if (req->version >= 0x200) {
        const char *text;
        size_t text_len;
        int status = http2_request_check(worker->slot, req, &text, &text_len);
        if (status != 0) {
            refuse(frontend, req, handler->control_only, status, text, text_len);
            return 0;
        }
    }
    if (req->entity.len > worker->config->max_body_bytes) {
        struct handler_response too_large = {.status = 413, .reason = handler_reason_phrase(413), .content_type = "text/plain",
                                             .body = "413 Payload Too Large\n", .is_head = false};
        too_large.body_len = strlen(too_large.body);
        send_response(frontend, req, &too_large);
        return 0;
    }
    handler_route(&worker->handler, &request, &response);

    if (response.delay_ns == 0) {
        send_response(frontend, req, &response);
        handler_response_release(&response);
        return 0;
    }
    struct h2o_held *held = h2o_mem_alloc_shared(&req->pool, sizeof(*held), on_held_dispose);
    memset(held, 0, sizeof(*held));
    held->req = req;
    held->frontend = frontend;
    held->response = response; /* owns any rendered storage from here on */
    held->entry.on_due = on_held_due;
    /* h2o has read the request by now; when its bytes arrived is not known here */
    if (worker_hold(worker, &held->entry, response.delay_ns, clock_monotonic_ns()) != 0) {
        struct handler_response unavailable = {.status = 503, .reason = handler_reason_phrase(503), .content_type = "text/plain",
                                               .body = "out of memory holding the request\n"};
        unavailable.body_len = strlen(unavailable.body);
        send_response(frontend, req, &unavailable);
    }
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

int h2o_frontend_init(struct h2o_frontend *frontend, struct worker *worker, struct h2o_frontend_shared *shared, char *err,
                      size_t err_size)
{
    memset(frontend, 0, sizeof(*frontend));
    frontend->worker = worker;
    frontend->loop = h2o_evloop_create();
    h2o_context_init(&frontend->benchmark_ctx, frontend->loop, &shared->benchmark_conf);
    h2o_context_init(&frontend->control_ctx, frontend->loop, &shared->control_conf);

    frontend->accept_ctx[STATS_LISTENER_HTTP] = (h2o_accept_ctx_t){.ctx = &frontend->benchmark_ctx,
                                                                   .hosts = shared->benchmark_conf.hosts};
    frontend->accept_ctx[STATS_LISTENER_TLS] = (h2o_accept_ctx_t){
        .ctx = &frontend->benchmark_ctx, .hosts = shared->benchmark_conf.hosts, .ssl_ctx = shared->ssl_ctx};
    frontend->accept_ctx[STATS_LISTENER_STATS] = (h2o_accept_ctx_t){.ctx = &frontend->control_ctx,
                                                                    .hosts = shared->control_conf.hosts};

    int epoll_fd;
    if (h2o_glue_epoll_fd(frontend->loop, &epoll_fd, err, err_size) != 0)
        return -1;
    ev_io_init(&frontend->epoll_watcher, on_epoll_readable, epoll_fd, EV_READ);
    frontend->epoll_watcher.data = frontend;
    ev_io_start(worker->loop, &frontend->epoll_watcher);
    ev_init(&frontend->timeout_watcher, on_h2o_timeout);
    frontend->timeout_watcher.data = frontend;
    return 0;
}

static void on_connection_close(void *data)
{
    /* data points at the kind inside worker->listeners[], which outlives every connection */
    const struct worker_listener *listener = data;
    worker_connection_closed(listener->worker, listener->kind);
}

static h2o_socket_t *socket_for(struct h2o_frontend *frontend, int fd, enum stats_listener kind)
{
    h2o_socket_t *sock = h2o_evloop_socket_create(frontend->loop, fd, 0);
    struct worker *worker = frontend->worker;
    for (size_t i = 0; i < worker->listener_count; i++) {
        if (worker->listeners[i].kind == kind) {
            sock->on_close.cb = on_connection_close;
            sock->on_close.data = &worker->listeners[i];
            break;
        }
    }
    return sock;
}

void h2o_frontend_accept(struct h2o_frontend *frontend, int fd, enum stats_listener kind)
{
    /* h2o_accept arms the TLS handshake timeout (or HTTP/1's request timeout) from h2o's clock */
    h2o_glue_clock_refresh(frontend->loop);
    h2o_accept(&frontend->accept_ctx[kind], socket_for(frontend, fd, kind));
}

void h2o_frontend_adopt(struct h2o_frontend *frontend, int fd, enum stats_listener kind, const char *bytes, size_t len)
{
    h2o_glue_clock_refresh(frontend->loop);
    h2o_socket_t *sock = socket_for(frontend, fd, kind);
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
    if (h2o_glue_has_pending_work(frontend->loop))
        h2o_glue_run_until_idle(frontend->loop);
    uint64_t wait_ms = h2o_glue_next_timeout_ms(frontend->loop);
    if (wait_ms == UINT64_MAX) {
        ev_timer_stop(frontend->worker->loop, &frontend->timeout_watcher);
        return;
    }
    /* +1 ms: h2o's clock has millisecond resolution, waking early would find nothing due */
    double after = (double)(wait_ms + 1) / 1000.0;
    if (!ev_is_active(&frontend->timeout_watcher) || ev_timer_remaining(frontend->worker->loop, &frontend->timeout_watcher) > after) {
        ev_timer_stop(frontend->worker->loop, &frontend->timeout_watcher);
        ev_timer_set(&frontend->timeout_watcher, after, 0.);
        ev_timer_start(frontend->worker->loop, &frontend->timeout_watcher);
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
