#include "http1_server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>


#include "arrival.h"
#include "clock.h"
#include "h2o_frontend.h"
#include "handler.h"
#include "http1_parse.h"
#include "picohttpparser.h"
#include "tls_hello.h"
#include "tls_io.h"
#include "worker.h"

/* Room for the largest head plus a generous read. */
#define SCRATCH_BYTES (2 * HTTP1_MAX_HEAD_BYTES)
/* Bodies up to this size are stored right after the preformatted head: one write() per response. */
#define INLINE_BODY_MAX_BYTES (16 * 1024)
/* Pipelined input kept while a response is held; past it the connection stops reading until the
 * response is out, so a client that floods requests cannot grow memory without bound. */
#define SAVED_INPUT_MAX_BYTES HTTP1_MAX_HEAD_BYTES

enum conn_state {
    CONN_TLS_HELLO,     /* TLS: waiting for the whole ClientHello, to choose this loop or h2o */
    CONN_TLS_HANDSHAKE, /* TLS: handshake under way */
    CONN_READING, /* waiting for or reading a request */
    CONN_HELD,    /* request complete, response waiting for its delay */
    CONN_WRITING, /* response partly written, waiting for the socket */
};

/* Unwritten response bytes, only when a write() came up short. */
struct pending_output {
    char *head;          /* owned copy of the unwritten head */
    size_t head_len;
    const char *body;    /* immutable (config body) or owned_body */
    size_t body_len;
    char *owned_body;
};

/* Kept small on purpose: idle keep-alive connections are most of a benchmark's memory (192 bytes,
 * one jemalloc size class; lengths use the narrowest type their limits allow). */
struct http1_conn {
    ev_io watcher;
    struct http1_server *server;
    struct delay_entry held;          /* the response waiting for its delay */
    struct http1_conn *timeout_prev, *timeout_next;
    uint64_t deadline_ns;
    char *saved;                      /* unconsumed input carried to the next read (partial head, pipelining) */
    struct pending_output *output;
    char *request_target;             /* "METHOD PATH" copy, only while a body spans several reads */
    struct phr_chunked_decoder chunked;
    uint32_t saved_len;               /* <= SCRATCH_BYTES */
    uint32_t body_left;               /* Content-Length bytes still to discard (<= --max-body-size, 1 GiB) */
    uint32_t body_bytes;              /* body bytes of the current request */
    uint16_t request_method_len, request_target_len; /* < HTTP1_MAX_HEAD_BYTES */
    uint8_t state;                    /* enum conn_state */
    uint8_t kind;                     /* enum stats_listener */
    uint8_t timeout_list;             /* enum timeout_list_id */
    bool in_body;                     /* reading the current request's body */
    bool chunked_body;
    bool keep_alive;                  /* after the current response */
    bool is_head;
    bool served_a_request;            /* a later HTTP/2 preface is no longer valid */
    bool processing;                  /* inside process_input: do not re-enter it */
    bool read_paused;
    bool first_read_peeked;           /* the connection's first bytes were checked for HTTP/2 */
    bool rcvlowat_raised;             /* TLS: SO_RCVLOWAT set while waiting for the whole ClientHello */
};

enum timeout_list_id { TIMEOUT_NONE, TIMEOUT_IDLE, TIMEOUT_REQUEST };

_Static_assert(sizeof(struct http1_conn) <= 192, "an idle connection should fit jemalloc's 192-byte class");

/* A connection of the TLS listener: the cleartext connection plus its OpenSSL state. Only TLS
 * connections pay for it, so an idle cleartext connection stays at 192 bytes. */
struct http1_tls_conn {
    struct http1_conn base;
    SSL *ssl;                    /* NULL until the ClientHello chose this loop */
    struct tls_io_socket socket; /* what ssl's BIO reads from */
};

static SSL *conn_ssl(struct http1_conn *conn)
{
    return conn->kind == STATS_LISTENER_TLS ? ((struct http1_tls_conn *)conn)->ssl : NULL;
}

/* ---- byte stream: plain socket or TLS, in plain-socket terms ---- */

/* Like recv(); records the arrival of what was read in server->input_arrival_ns. */
static ssize_t conn_recv(struct http1_conn *conn, char *buf, size_t size)
{
    struct http1_server *server = conn->server;
    SSL *ssl = conn_ssl(conn);
    ssize_t n = ssl != NULL ? tls_io_read(ssl, buf, size) : arrival_recv(&server->arrivals, conn->watcher.fd, buf, size);
    if (n > 0)
        server->input_arrival_ns = server->arrivals.last_arrival_ns;
    return n;
}

/* Like writev() on up to two buffers. */
static ssize_t conn_writev(struct http1_conn *conn, const struct iovec *iov, int iov_count)
{
    SSL *ssl = conn_ssl(conn);
    if (ssl != NULL)
        return tls_io_writev(ssl, iov, iov_count);
    return iov_count == 1 ? write(conn->watcher.fd, iov[0].iov_base, iov[0].iov_len) : writev(conn->watcher.fd, iov, iov_count);
}

static struct http1_timeout_list *timeout_list_of(struct http1_conn *conn)
{
    switch (conn->timeout_list) {
    case TIMEOUT_IDLE: return &conn->server->idle;
    case TIMEOUT_REQUEST: return &conn->server->request;
    default: return NULL;
    }
}

/* ---- timeouts ---- */

static void timeout_remove(struct http1_conn *conn)
{
    struct http1_timeout_list *list = timeout_list_of(conn);
    if (list == NULL)
        return;
    if (conn->timeout_prev != NULL)
        conn->timeout_prev->timeout_next = conn->timeout_next;
    else
        list->head = conn->timeout_next;
    if (conn->timeout_next != NULL)
        conn->timeout_next->timeout_prev = conn->timeout_prev;
    else
        list->tail = conn->timeout_prev;
    conn->timeout_prev = conn->timeout_next = NULL;
    conn->timeout_list = TIMEOUT_NONE;
}

/* Same timeout for everyone in a list, so appending keeps it sorted by deadline and the list's
 * timer only needs setting when the list was empty (libev's "be smart about timeouts"). */
static void timeout_add(struct http1_timeout_list *list, struct http1_conn *conn, uint64_t now_ns)
{
    timeout_remove(conn);
    conn->deadline_ns = now_ns + list->timeout_ns;
    conn->timeout_list = list == &conn->server->idle ? TIMEOUT_IDLE : TIMEOUT_REQUEST;
    conn->timeout_prev = list->tail;
    conn->timeout_next = NULL;
    if (list->tail != NULL) {
        list->tail->timeout_next = conn;
    } else {
        list->head = conn;
        if (!ev_is_active(&list->timer)) {
            ev_timer_set(&list->timer, clock_ns_to_ev_seconds(list->timeout_ns), 0.);
            ev_timer_start(list->server->worker->loop, &list->timer);
        }
    }
    list->tail = conn;
}

static void conn_close(struct http1_conn *conn);

static void on_timeout_timer(struct ev_loop *loop, ev_timer *timer, int revents)
{
    struct http1_timeout_list *list = timer->data;
    uint64_t now_ns = clock_monotonic_ns();
    while (list->head != NULL && list->head->deadline_ns <= now_ns)
        conn_close(list->head);
    if (list->head != NULL) {
        ev_timer_set(timer, clock_ns_to_ev_seconds(list->head->deadline_ns - now_ns), 0.);
        ev_timer_start(loop, timer);
    }
}

/* ---- connection life ---- */

static void conn_free_output(struct http1_conn *conn)
{
    if (conn->output == NULL)
        return;
    free(conn->output->head);
    free(conn->output->owned_body);
    free(conn->output);
    conn->output = NULL;
}

static void conn_close(struct http1_conn *conn)
{
    struct worker *worker = conn->server->worker;
    ev_io_stop(worker->loop, &conn->watcher);
    if (delay_entry_is_queued(&conn->held))
        worker_hold_cancel(worker, &conn->held);
    timeout_remove(conn);
    SSL *ssl = conn_ssl(conn);
    if (ssl != NULL)
        tls_io_close(ssl);
    close(conn->watcher.fd);
    worker_connection_closed(worker, (enum stats_listener)conn->kind);
    conn_free_output(conn);
    free(conn->saved);
    free(conn->request_target);
    free(conn);
}

/* The connection speaks HTTP/2: h2o takes the socket and the bytes read so far. */
static void conn_hand_to_h2o(struct http1_conn *conn, const char *bytes, size_t len)
{
    struct worker *worker = conn->server->worker;
    ev_io_stop(worker->loop, &conn->watcher);
    timeout_remove(conn);
    /* nothing read yet (h2c preface or Upgrade peeked, a TLS ClientHello offering h2): h2o's own
     * accept path, which also does the TLS handshake; else h2o starts from what we read */
    if (len == 0)
        h2o_frontend_accept(worker->h2o, conn->watcher.fd, (enum stats_listener)conn->kind);
    else
        h2o_frontend_adopt(worker->h2o, conn->watcher.fd, (enum stats_listener)conn->kind, bytes, len);
    conn_free_output(conn);
    free(conn->saved);
    free(conn->request_target);
    free(conn);
}

static void conn_set_events(struct http1_conn *conn, int events)
{
    if (conn->watcher.events == events)
        return;
    struct ev_loop *loop = conn->server->worker->loop;
    ev_io_stop(loop, &conn->watcher);
    ev_io_set(&conn->watcher, conn->watcher.fd, events);
    if (events != 0)
        ev_io_start(loop, &conn->watcher);
}

static bool process_saved_input(struct http1_conn *conn);

/* OpenSSL reads ahead: input it already holds will not make the socket readable again. While the
 * connection wants to read, have libev call us as if it were (in this same loop iteration). */
static void conn_read_on_if_buffered(struct http1_conn *conn)
{
    SSL *ssl = conn_ssl(conn);
    if (ssl != NULL && (conn->watcher.events & EV_READ) && tls_io_pending(ssl))
        ev_feed_event(conn->server->worker->loop, &conn->watcher, EV_READ);
}

/* The current response is fully written. Returns false if the connection is gone. */
static bool response_done(struct http1_conn *conn)
{
    struct worker *worker = conn->server->worker;
    conn_free_output(conn);
    if (!conn->keep_alive || worker->draining) {
        /* Let the client see the end of the response before the close; unread input would turn the
         * close into a reset that can destroy the response in flight. */
        SSL *ssl = conn_ssl(conn);
        if (ssl != NULL)
            tls_io_shutdown(ssl); /* close_notify before the FIN; conn_close does not send it again */
        shutdown(conn->watcher.fd, SHUT_WR);
        conn_close(conn);
        return false;
    }
    conn->state = CONN_READING;
    conn->read_paused = false;
    conn_set_events(conn, EV_READ);
    timeout_add(&conn->server->idle, conn, clock_monotonic_ns());
    if (conn->saved_len != 0 && !conn->processing && !process_saved_input(conn))
        return false;
    conn_read_on_if_buffered(conn);
    return true;
}

/* Writes head+body; keeps what the socket did not take. Returns false if the connection closed. */
static bool conn_write(struct http1_conn *conn, const char *head, size_t head_len, const char *body, size_t body_len,
                       bool body_is_immutable)
{
    struct iovec iov[2] = {{(void *)head, head_len}, {(void *)body, body_len}};
    ssize_t n = conn_writev(conn, iov, body_len ? 2 : 1);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            conn_close(conn);
            return false;
        }
        n = 0;
    }
    size_t written = (size_t)n;
    if (written == head_len + body_len)
        return response_done(conn);
    struct pending_output *out = calloc(1, sizeof(*out));
    if (out == NULL) {
        conn_close(conn);
        return false;
    }
    size_t head_written = written < head_len ? written : head_len;
    size_t body_written = written - head_written;
    out->head_len = head_len - head_written;
    out->head = out->head_len ? malloc(out->head_len) : NULL;
    if (out->head_len)
        memcpy(out->head, head + head_written, out->head_len);
    out->body_len = body_len - body_written;
    if (body_is_immutable) {
        out->body = body + body_written;
    } else if (out->body_len) {
        out->owned_body = malloc(out->body_len);
        if (out->owned_body)
            memcpy(out->owned_body, body + body_written, out->body_len);
        out->body = out->owned_body;
    }
    conn->output = out;
    if ((out->head_len && out->head == NULL) || (out->body_len && out->body == NULL)) {
        conn_close(conn);
        return false;
    }
    conn->state = CONN_WRITING;
    conn_set_events(conn, EV_READ | EV_WRITE);
    timeout_add(&conn->server->request, conn, clock_monotonic_ns());
    return true;
}

static void flush_output(struct http1_conn *conn)
{
    struct pending_output *out = conn->output;
    if (out == NULL)
        return;
    struct iovec iov[2] = {{out->head, out->head_len}, {(void *)out->body, out->body_len}};
    int first = out->head_len ? 0 : 1;
    ssize_t n = conn_writev(conn, iov + first, 2 - first);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_close(conn);
        return;
    }
    size_t written = (size_t)n, from_head = written < out->head_len ? written : out->head_len;
    if (from_head != 0) /* head is NULL once written: memmove(NULL, ...) is undefined even for 0 bytes */
        memmove(out->head, out->head + from_head, out->head_len - from_head);
    out->head_len -= from_head;
    out->body += written - from_head;
    out->body_len -= written - from_head;
    if (out->head_len == 0 && out->body_len == 0) {
        response_done(conn);
        return;
    }
    /* A client that reads, however slowly, keeps its connection (nginx's send_timeout does the same):
     * --request-timeout runs from the last progress, so a large body to a slow reader is not cut
     * off, while one that stops reading is closed. O(1): the connection moves to the list's tail. */
    if (written != 0)
        timeout_add(&conn->server->request, conn, clock_monotonic_ns());
}

/* ---- responses ---- */

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

/* The benchmark response depends only on the config and the second: format it once per second. */
static void refresh_benchmark_response(struct http1_server *server)
{
    time_t now = time(NULL);
    if (now == server->response_date && server->response_keep_alive.len != 0)
        return;
    const struct config *cfg = server->worker->config;
    char date[64];
    format_date(date, sizeof(date), now);
    struct strbuf *variants[2] = {&server->response_keep_alive, &server->response_close};
    for (int i = 0; i < 2; i++) {
        strbuf_clear(variants[i]);
        append_common_head(variants[i], 200, "OK", date, "text/plain", cfg->body_bytes, i == 0);
        strbuf_append(variants[i], "\r\n", 2);
        if (i == 0)
            server->response_head_bytes = variants[i]->len;
        else
            server->response_close_head_bytes = variants[i]->len;
        if (server->response_body_inline)
            strbuf_append(variants[i], cfg->body, cfg->body_bytes);
    }
    server->response_date = now;
}

static void count_request(struct http1_conn *conn, const struct handler_response *res, size_t body_sent)
{
    struct stats_worker_slot *slot = conn->server->worker->slot;
    if (res->is_control || conn->kind == STATS_LISTENER_STATS)
        stats_add(&slot->control_requests, 1);
    else
        stats_request_done(slot, STATS_PROTOCOL_HTTP1, conn->kind == STATS_LISTENER_TLS, res->status, conn->body_bytes, body_sent);
}

static bool send_benchmark_response(struct http1_conn *conn)
{
    struct http1_server *server = conn->server;
    const struct config *cfg = server->worker->config;
    bool keep_alive = conn->keep_alive && !server->worker->draining;
    refresh_benchmark_response(server);
    const struct strbuf *r = keep_alive ? &server->response_keep_alive : &server->response_close;
    size_t head_len = keep_alive ? server->response_head_bytes : server->response_close_head_bytes;
    size_t body_len = conn->is_head ? 0 : cfg->body_bytes;
    struct handler_response counted = {.status = 200};
    count_request(conn, &counted, body_len);
    conn->keep_alive = keep_alive;
    if (server->response_body_inline)
        return conn_write(conn, r->data, head_len + body_len, NULL, 0, true);
    return conn_write(conn, r->data, head_len, cfg->body, body_len, true);
}

static bool send_handler_response(struct http1_conn *conn, const struct handler_response *res)
{
    struct http1_server *server = conn->server;
    bool keep_alive = conn->keep_alive && !server->worker->draining;
    conn->keep_alive = keep_alive;
    char date[64];
    format_date(date, sizeof(date), time(NULL));
    strbuf_clear(&server->error_head);
    append_common_head(&server->error_head, res->status, res->reason, date, res->content_type, res->body_len, keep_alive);
    if (res->allow != NULL)
        strbuf_appendf(&server->error_head, "Allow: %s\r\n", res->allow);
    strbuf_append(&server->error_head, "\r\n", 2);
    if (server->error_head.failed) {
        conn_close(conn);
        return false;
    }
    size_t body_len = res->is_head ? 0 : res->body_len;
    count_request(conn, res, body_len);
    return conn_write(conn, server->error_head.data, server->error_head.len, res->body, body_len, false);
}

/* A request the parser refused: answer (the body says why, so a client author can tell which rule
 * their client broke) and close once written. */
static void send_refusal(struct http1_conn *conn, int status, const char *why)
{
    struct handler_response res = {.status = status, .reason = handler_reason_phrase(status), .content_type = "text/plain"};
    char body[192];
    snprintf(body, sizeof(body), "%d %s: %s\n", status, res.reason, why);
    res.body = body;
    res.body_len = strlen(body);
    conn->keep_alive = false;
    conn->body_bytes = 0;
    conn->in_body = false;
    send_handler_response(conn, &res);
}

static void on_held_due(struct delay_entry *entry, uint64_t now_ns)
{
    struct http1_conn *conn = (struct http1_conn *)((char *)entry - offsetof(struct http1_conn, held));
    worker_hold_released(conn->server->worker, entry, clock_monotonic_ns());
    send_benchmark_response(conn);
}

/* The request is complete (head and body): route it and answer now or after its delay.
 * Returns false if the connection is gone. */
static bool dispatch(struct http1_conn *conn, const char *method, size_t method_len, const char *path, size_t path_len)
{
    struct worker *worker = conn->server->worker;
    struct handler_request request = {.method = method, .method_len = method_len, .path = path, .path_len = path_len,
                                      .listener = (enum stats_listener)conn->kind};
    struct handler_response res;
    handler_route(&worker->handler, &request, &res);
    conn->served_a_request = true;
    conn->is_head = res.is_head;
    timeout_remove(conn);
    bool benchmark = !res.is_control && res.status == 200 && res.body == worker->config->body;
    if (benchmark && res.delay_ns != 0) {
        conn->state = CONN_HELD;
        conn->held.on_due = on_held_due;
        /* never due before delay after the previous response's due time: pipelined or early
         * requests are answered one after the other, as before */
        uint64_t arrival_ns = conn->server->input_arrival_ns;
        if (arrival_ns < conn->held.due_ns)
            arrival_ns = conn->held.due_ns;
        if (worker_hold(worker, &conn->held, res.delay_ns, arrival_ns) == 0) {
            handler_response_release(&res);
            return true;
        }
        conn->state = CONN_READING;
        conn->keep_alive = false;
        struct handler_response unavailable = {.status = 503, .reason = handler_reason_phrase(503), .content_type = "text/plain",
                                               .body = "out of memory holding the request\n"};
        unavailable.body_len = strlen(unavailable.body);
        handler_response_release(&res);
        return send_handler_response(conn, &unavailable);
    }
    /* the response borrows res's storage: write (or copy) before releasing it */
    bool alive = benchmark ? send_benchmark_response(conn) : send_handler_response(conn, &res);
    handler_response_release(&res);
    return alive;
}

/* ---- input ---- */

/* Discards body bytes at buf. Returns bytes consumed, or -1 if the body is malformed or too large. */
static ssize_t consume_body(struct http1_conn *conn, char *buf, size_t len, bool *complete)
{
    uint64_t max_body = conn->server->worker->config->max_body_bytes;
    *complete = false;
    if (!conn->chunked_body) {
        size_t take = conn->body_left < len ? conn->body_left : len;
        conn->body_left -= take;
        *complete = conn->body_left == 0;
        return (ssize_t)take;
    }
    size_t decoded = len;
    ssize_t left = phr_decode_chunked(&conn->chunked, buf, &decoded);
    if (left == -1)
        return -1;
    /* decoded <= one read, so the sum cannot wrap before it passes the 1 GiB limit */
    conn->body_bytes += (uint32_t)decoded;
    if (conn->body_bytes > max_body)
        return -1;
    if (left == -2)
        return (ssize_t)len;
    /* the bytes after the body (a pipelined request) sit right after the decoded data: move them to
     * the end of the region so the caller's offset arithmetic stays simple */
    memmove(buf + len - (size_t)left, buf + decoded, (size_t)left);
    *complete = true;
    return (ssize_t)(len - (size_t)left);
}

/* Handles as many complete requests in buf as the connection's state allows. Returns bytes consumed,
 * or -1 if the connection is gone (closed or handed to h2o). */
static ssize_t process_input(struct http1_conn *conn, char *buf, size_t len)
{
    const struct config *cfg = conn->server->worker->config;
    size_t off = 0;
    while (conn->state == CONN_READING) {
        if (conn->in_body) {
            bool complete;
            ssize_t used = consume_body(conn, buf + off, len - off, &complete);
            if (used < 0) {
                bool too_large = conn->body_bytes > cfg->max_body_bytes;
                send_refusal(conn, too_large ? 413 : 400, too_large ? "request body larger than --max-body-size" : "malformed chunked body");
                return -1;
            }
            off += (size_t)used;
            if (!complete)
                return (ssize_t)off;
            conn->in_body = false;
            char *target = conn->request_target;
            conn->request_target = NULL;
            bool alive = dispatch(conn, target, conn->request_method_len, target + conn->request_method_len + 1,
                                  conn->request_target_len);
            free(target);
            if (!alive)
                return -1;
            continue;
        }
        if (off == len)
            return (ssize_t)off;
        /* h2c exists only in cleartext: over TLS, HTTP/2 is chosen by ALPN before we get here */
        bool cleartext = conn->kind != STATS_LISTENER_TLS;
        if (cleartext && !conn->served_a_request && off == 0 && http1_looks_like_h2_preface(buf, len)) {
            if (len < strlen(HTTP1_H2_PREFACE))
                return 0; /* wait for the whole preface */
            conn_hand_to_h2o(conn, buf, len);
            return -1;
        }
        struct http1_request req;
        int error_status = 0;
        int head = http1_request_parse(buf + off, len - off, &req, &error_status);
        if (head == -2) {
            /* the deadline runs from the request's first byte: a client trickling bytes
             * (slowloris) must not push it back with each one */
            if (conn->timeout_list != TIMEOUT_REQUEST)
                timeout_add(&conn->server->request, conn, clock_monotonic_ns());
            return (ssize_t)off;
        }
        if (head < 0) {
            send_refusal(conn, error_status, req.refusal_reason);
            return -1;
        }
        if (req.upgrade_h2c && cleartext) {
            conn_hand_to_h2o(conn, buf + off, len - off);
            return -1;
        }
        off += (size_t)head;
        conn->keep_alive = req.keep_alive;
        conn->body_bytes = 0;
        if (req.body_kind == HTTP1_BODY_LENGTH && req.content_length > cfg->max_body_bytes) {
            send_refusal(conn, 413, "Content-Length larger than --max-body-size");
            return -1;
        }
        if (req.body_kind == HTTP1_BODY_NONE) {
            if (!dispatch(conn, req.method, req.method_len, req.path, req.path_len))
                return -1;
            continue;
        }
        if (req.expect_continue) {
            static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
            struct iovec iov = {(void *)continue_line, sizeof(continue_line) - 1};
            if (conn_writev(conn, &iov, 1) != (ssize_t)(sizeof(continue_line) - 1)) {
                conn_close(conn);
                return -1;
            }
        }
        conn->in_body = true;
        conn->chunked_body = req.body_kind == HTTP1_BODY_CHUNKED;
        /* both fit: content_length was checked against --max-body-size (at most 1 GiB) above */
        conn->body_left = (uint32_t)req.content_length;
        conn->body_bytes = conn->chunked_body ? 0 : (uint32_t)req.content_length;
        memset(&conn->chunked, 0, sizeof(conn->chunked));
        conn->chunked.consume_trailer = 1;
        /* the body may span reads that reuse the scratch buffer: keep method and path */
        conn->request_target = malloc(req.method_len + 1 + req.path_len);
        if (conn->request_target == NULL) {
            conn_close(conn);
            return -1;
        }
        memcpy(conn->request_target, req.method, req.method_len);
        conn->request_target[req.method_len] = ' ';
        memcpy(conn->request_target + req.method_len + 1, req.path, req.path_len);
        conn->request_method_len = (uint16_t)req.method_len;
        conn->request_target_len = (uint16_t)req.path_len;
        timeout_add(&conn->server->request, conn, clock_monotonic_ns());
    }
    return (ssize_t)off;
}

/* Processes buf (in the scratch buffer) and keeps the unconsumed rest in conn->saved.
 * Returns false if the connection is gone or closing. */
static bool process_and_save(struct http1_conn *conn, char *buf, size_t len)
{
    conn->processing = true;
    ssize_t used = conn->state == CONN_READING ? process_input(conn, buf, len) : 0;
    if (used < 0)
        return false; /* gone, or refused and closing once its answer is written */
    conn->processing = false;
    size_t rest = len - (size_t)used;
    if (rest != 0) {
        char *saved = malloc(rest);
        if (saved == NULL) {
            conn_close(conn);
            return false;
        }
        memcpy(saved, buf + used, rest);
        conn->saved = saved;
        conn->saved_len = (uint32_t)rest;
    }
    if (conn->state != CONN_READING && conn->saved_len >= SAVED_INPUT_MAX_BYTES && !conn->read_paused) {
        conn->read_paused = true;
        conn_set_events(conn, conn->watcher.events & ~EV_READ);
    }
    return true;
}

static bool process_saved_input(struct http1_conn *conn)
{
    char *scratch = conn->server->scratch;
    conn->server->input_arrival_ns = clock_monotonic_ns(); /* waited behind a response: starts now */
    size_t len = conn->saved_len;
    memcpy(scratch, conn->saved, len);
    free(conn->saved);
    conn->saved = NULL;
    conn->saved_len = 0;
    return process_and_save(conn, scratch, len);
}

/* An HTTP/2 connection (prior-knowledge preface, or Upgrade: h2c in its first request) goes to h2o
 * before we consume anything, through h2o's ordinary accept path. Handing h2o bytes we had already
 * read (conn_hand_to_h2o) crashed h2o 2.2.5 (an assertion in its evloop's write_pending) with several
 * hundred such connections in one worker, so that path is kept only for an upgrade that comes after
 * requests were already served on the connection. Costs one recv(MSG_PEEK) per connection. */
static bool hand_over_unread_if_http2(struct http1_conn *conn)
{
    struct http1_server *server = conn->server;
    conn->first_read_peeked = true;
    ssize_t n = recv(conn->watcher.fd, server->scratch, server->scratch_size, MSG_PEEK);
    if (n <= 0)
        return false; /* the read that follows sees the same error or EOF */
    struct http1_request req;
    int status;
    bool http2 = http1_looks_like_h2_preface(server->scratch, (size_t)n) ||
                 (http1_request_parse(server->scratch, (size_t)n, &req, &status) > 0 && req.upgrade_h2c);
    if (!http2)
        return false;
    conn_hand_to_h2o(conn, NULL, 0);
    return true;
}

static void on_readable(struct http1_conn *conn)
{
    struct http1_server *server = conn->server;
    if (!conn->first_read_peeked && conn->kind != STATS_LISTENER_TLS && hand_over_unread_if_http2(conn))
        return;
    size_t have = conn->saved_len;
    if (have + HTTP1_MAX_HEAD_BYTES > server->scratch_size) {
        /* cannot happen while saved input is bounded; refuse rather than overflow */
        conn_close(conn);
        return;
    }
    ssize_t n = conn_recv(conn, server->scratch + have, server->scratch_size - have);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        /* the client closed or reset: whatever it asked for is cancelled (conn_close counts it) */
        conn_close(conn);
        return;
    }
    if (have != 0) {
        memcpy(server->scratch, conn->saved, have);
        free(conn->saved);
        conn->saved = NULL;
        conn->saved_len = 0;
    }
    if (process_and_save(conn, server->scratch, have + (size_t)n))
        conn_read_on_if_buffered(conn);
}

/* ---- TLS set-up: choose the path from the ClientHello, then the handshake ---- */

static void tls_handshake_step(struct http1_conn *conn);

/* Readiness only once `bytes` are in the socket (SO_RCVLOWAT, honoured by TCP's poll). A ClientHello
 * that arrives in pieces must stay unread (so h2o can still be handed the connection whole), and a
 * level-triggered watcher would otherwise report the same unread bytes again and again: a client
 * sending half a hello and going silent would cost a CPU per few hundred connections. With the
 * mark set it costs nothing until the rest arrives, the client leaves (EOF is always readable) or
 * the request timeout, running since accept, closes it. */
static int conn_set_rcvlowat(struct http1_conn *conn, size_t bytes)
{
    int value = bytes > INT32_MAX ? INT32_MAX : (int)bytes;
    conn->rcvlowat_raised = value > 1;
    return setsockopt(conn->watcher.fd, SOL_SOCKET, SO_RCVLOWAT, &value, sizeof(value));
}

/* Peeks at the ClientHello: a client offering h2 goes to h2o unread, any other is served here. */
static void tls_hello_route(struct http1_conn *conn)
{
    struct http1_server *server = conn->server;
    ssize_t n = recv(conn->watcher.fd, server->scratch, server->scratch_size, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(conn);
        return;
    }
    bool offers_h2 = false;
    size_t want_bytes = 0;
    enum tls_hello_result hello = tls_hello_offers_h2((const unsigned char *)server->scratch, (size_t)n, &offers_h2, &want_bytes);
    if (hello == TLS_HELLO_INCOMPLETE && want_bytes <= server->scratch_size) {
        if (conn_set_rcvlowat(conn, want_bytes) != 0)
            conn_close(conn);
        return;
    }
    if (conn->rcvlowat_raised && conn_set_rcvlowat(conn, 1) != 0) {
        conn_close(conn);
        return;
    }
    switch (hello) {
    case TLS_HELLO_INCOMPLETE: /* more than the peek buffer would hold: let OpenSSL refuse it */
        break;
    case TLS_HELLO_PARSED:
        if (offers_h2) {
            conn_hand_to_h2o(conn, NULL, 0);
            return;
        }
        break;
    case TLS_HELLO_UNPARSABLE:
        break; /* OpenSSL answers it with the right alert */
    }
    struct http1_tls_conn *tls = (struct http1_tls_conn *)conn;
    tls->ssl = tls_io_new(server->ssl_ctx, &tls->socket);
    if (tls->ssl == NULL) {
        conn_close(conn);
        return;
    }
    conn->state = CONN_TLS_HANDSHAKE;
    tls_handshake_step(conn);
}

static void tls_handshake_step(struct http1_conn *conn)
{
    switch (tls_io_handshake(conn_ssl(conn))) {
    case TLS_IO_DONE:
        /* from here on the connection is an HTTP/1.1 connection like any other */
        conn->state = CONN_READING;
        conn_set_events(conn, EV_READ);
        timeout_add(&conn->server->idle, conn, clock_monotonic_ns());
        conn_read_on_if_buffered(conn); /* the first request may have come with the Finished message */
        return;
    case TLS_IO_WANT_READ:
        conn_set_events(conn, EV_READ);
        return;
    case TLS_IO_WANT_WRITE:
        conn_set_events(conn, EV_WRITE);
        return;
    case TLS_IO_FAILED:
        conn_close(conn);
        return;
    }
}

static void on_conn_io(struct ev_loop *loop, ev_io *watcher, int revents)
{
    struct http1_conn *conn = watcher->data;
    struct delay_queue *delays = &conn->server->worker->delays;
    if (conn->state == CONN_TLS_HELLO)
        tls_hello_route(conn);
    else if (conn->state == CONN_TLS_HANDSHAKE)
        tls_handshake_step(conn);
    else if (revents & EV_WRITE)
        flush_output(conn); /* the connection may be gone; a pending read shows up again (level-triggered) */
    else if (revents & EV_READ)
        on_readable(conn);
    /* Under load one epoll_wait returns hundreds of ready connections, ~10 us of kernel work each:
     * waiting for the end of the batch would make due responses milliseconds late. */
    delay_queue_fire_due(delays);
}

/* ---- public ---- */

int http1_server_init(struct http1_server *server, struct worker *worker, SSL_CTX *ssl_ctx)
{
    memset(server, 0, sizeof(*server));
    server->worker = worker;
    server->ssl_ctx = ssl_ctx;
    if (ssl_ctx != NULL && tls_io_global_init() != 0)
        return -1;
    server->scratch_size = SCRATCH_BYTES;
    server->scratch = malloc(server->scratch_size);
    if (server->scratch == NULL)
        return -1;
    server->response_body_inline = worker->config->body_bytes <= INLINE_BODY_MAX_BYTES;
    strbuf_init(&server->response_keep_alive);
    strbuf_init(&server->response_close);
    strbuf_init(&server->error_head);
    struct http1_timeout_list *lists[2] = {&server->idle, &server->request};
    uint64_t timeouts[2] = {worker->config->idle_timeout_ns, worker->config->request_timeout_ns};
    for (int i = 0; i < 2; i++) {
        lists[i]->server = server;
        lists[i]->timeout_ns = timeouts[i];
        ev_init(&lists[i]->timer, on_timeout_timer);
        lists[i]->timer.data = lists[i];
    }
    return 0;
}

void http1_server_accept(struct http1_server *server, int fd, enum stats_listener kind)
{
    bool tls = kind == STATS_LISTENER_TLS;
    struct http1_conn *conn = calloc(1, tls ? sizeof(struct http1_tls_conn) : sizeof(struct http1_conn));
    if (conn == NULL) {
        close(fd);
        worker_connection_closed(server->worker, kind);
        return;
    }
    conn->server = server;
    conn->kind = (uint8_t)kind;
    conn->state = tls ? CONN_TLS_HELLO : CONN_READING;
    conn->keep_alive = true;
    if (tls)
        ((struct http1_tls_conn *)conn)->socket = (struct tls_io_socket){.fd = fd, .arrivals = &server->arrivals};
    ev_io_init(&conn->watcher, on_conn_io, fd, EV_READ);
    conn->watcher.data = conn;
    ev_io_start(server->worker->loop, &conn->watcher);
    /* a TLS handshake is bounded like a request (h2o's handshake timeout was 10 s, the default) */
    timeout_add(tls ? &server->request : &server->idle, conn, clock_monotonic_ns());
}

void http1_server_request_shutdown(struct http1_server *server)
{
    while (server->idle.head != NULL)
        conn_close(server->idle.head);
}
