#include "http1_server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "arrival.h"
#include "clock.h"
#include "h2o_frontend.h"
#include "http1_parse.h"
#include "picohttpparser.h"
#include "request_core.h"
#include "tls_hello.h"
#include "tls_io.h"

/* Room for the largest head plus a generous read. */
#define SCRATCH_BYTES (2 * HTTP1_MAX_HEAD_BYTES)
/* Pipelined input kept while a response is held; past it the connection stops reading until the
 * response is out, so a client that floods requests cannot grow memory without bound. */
#define SAVED_INPUT_MAX_BYTES HTTP1_MAX_HEAD_BYTES

enum conn_state {
    CONN_TLS_HELLO,     /* TLS: waiting for the whole ClientHello, to choose this loop or h2o */
    CONN_TLS_HANDSHAKE, /* TLS: handshake under way */
    CONN_READING, /* waiting for or reading a request */
    CONN_HELD,    /* request complete, response waiting for its delay */
    CONN_WRITING, /* response partly written, waiting for the socket */
    CONN_PACING,  /* a paced body (dribble=, rate=) waits for its next part's time */
};

struct paced_body;

/* Unwritten response bytes, when a write() came up short; for a paced body, from its head to its
 * last part. */
struct pending_output {
    char *head;          /* owned copy of the unwritten head */
    size_t head_len;
    const char *body;    /* immutable (config body) or owned_body */
    size_t body_len;
    char *owned_body;
    struct paced_body *paced; /* NULL unless the body goes in parts */
};

/* A body sent in parts (handler_pace_part_*). The body is the configured one or the worker's fill,
 * which never move, so only this small description is kept: one allocation per paced response. */
struct paced_body {
    struct delay_entry next_part; /* in the delay queue while the next part waits for its time */
    struct http1_conn *conn;
    const char *body;
    size_t body_len;
    struct handler_pace pace;
    uint32_t parts_sent;
    uint64_t head_sent_ns;        /* CLOCK_MONOTONIC: when the head was written, parts are due from it */
};

/* What dispatch needs of a parsed request: the head's fields (pointing into the read buffer, or into
 * a body_wait copy) and when the head arrived. */
struct request_view {
    const char *method, *path;
    size_t method_len, path_len;
    struct request_controls controls;
    uint64_t head_arrival_ns; /* CLOCK_MONOTONIC, of the read that completed the head */
};

/* A request whose body spans reads, which reuse the scratch buffer: its view, with the bytes it
 * points at copied after it (method, path, X-Mock-* values). Only such requests pay for one. */
struct body_wait {
    struct request_view view;
    char bytes[];
};

/* A held answer other than the default one (handler_response_is_default_benchmark), which needs its
 * description kept until it is due. The default one, most of a benchmark, keeps nothing. */
struct held_response {
    struct handler_response response; /* owns its rendered storage */
};

/* Kept small on purpose: idle keep-alive connections are most of a benchmark's memory (192 bytes,
 * one jemalloc size class; lengths use the narrowest type their limits allow). */
struct http1_conn {
    ev_io watcher;
    struct http1_server *server;
    struct delay_entry held;          /* the response waiting for its delay */
    struct timeout_node timeout;      /* in the idle or request list, as timeout_list says */
    char *saved;                      /* unconsumed input carried to the next read (partial head, pipelining) */
    union {                           /* never both: a response is either held or being written */
        struct pending_output *output;        /* CONN_WRITING */
        struct held_response *held_response;  /* CONN_HELD, when not the default answer (else NULL) */
    };
    struct body_wait *body_wait;      /* the request whose body is still arriving (several reads) */
    struct phr_chunked_decoder chunked;
    uint32_t saved_len;               /* <= SCRATCH_BYTES */
    uint32_t body_left;               /* Content-Length bytes still to discard (<= --max-body-size, 1 GiB) */
    uint32_t body_bytes;              /* body bytes of the current request */
    uint32_t responses_sent;          /* counted only with --max-requests-per-connection */
    uint32_t age_deadline_ms;         /* --max-connection-age: the monotonic clock in ms (wrapping) when it is due */
    /* the small fields share one word (bit-fields: an idle connection stays within 192 bytes) */
    unsigned state : 3;               /* enum conn_state */
    unsigned kind : 2;                /* enum listener_kind */
    unsigned timeout_list : 2;        /* enum timeout_list_id */
    unsigned close_reason : 4;        /* enum stats_close_reason: why it will close (set by the first reason) */
    unsigned in_body : 1;             /* reading the current request's body */
    unsigned chunked_body : 1;
    unsigned keep_alive : 1;          /* after the current response */
    unsigned is_head : 1;
    unsigned served_a_request : 1;    /* a later HTTP/2 preface is no longer valid */
    unsigned processing : 1;          /* inside process_input: do not re-enter it */
    unsigned read_paused : 1;
    unsigned first_read_peeked : 1;   /* the connection's first bytes were checked for HTTP/2 */
    unsigned rcvlowat_raised : 1;     /* TLS: SO_RCVLOWAT set while waiting for the whole ClientHello */
};

enum timeout_list_id { TIMEOUT_NONE, TIMEOUT_IDLE, TIMEOUT_REQUEST };

_Static_assert(CONN_WRITING < 8 && LISTENER_KIND_COUNT <= 4 && TIMEOUT_REQUEST < 4 && STATS_CLOSE_REASON_COUNT <= 16,
               "the bit-fields of struct http1_conn hold their enums");

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
    return conn->kind == LISTENER_TLS ? ((struct http1_tls_conn *)conn)->ssl : NULL;
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

/* ---- timeouts ---- */

static struct timeout_list *timeout_list_of(struct http1_conn *conn)
{
    switch (conn->timeout_list) {
    case TIMEOUT_IDLE: return &conn->server->idle;
    case TIMEOUT_REQUEST: return &conn->server->request;
    default: return NULL;
    }
}

static void timeout_remove(struct http1_conn *conn)
{
    struct timeout_list *list = timeout_list_of(conn);
    if (list == NULL)
        return;
    timeout_list_remove(list, &conn->timeout);
    conn->timeout_list = TIMEOUT_NONE;
}

/* (Re)starts the connection's deadline in `list`: now + that list's timeout. */
static void timeout_add(struct timeout_list *list, struct http1_conn *conn, uint64_t now_ns)
{
    timeout_remove(conn);
    conn->timeout_list = list == &conn->server->idle ? TIMEOUT_IDLE : TIMEOUT_REQUEST;
    timeout_list_append(list, &conn->timeout, now_ns);
}

static void conn_close(struct http1_conn *conn);
static void on_hang_timeout(struct delay_entry *entry, uint64_t now_ns);

/* Closes for `reason` (unless an earlier reason was recorded: the first one is counted). */
static void conn_close_for(struct http1_conn *conn, enum stats_close_reason reason)
{
    if (conn->close_reason == STATS_CLOSE_CLIENT)
        conn->close_reason = reason;
    conn_close(conn);
}

static void on_timeout_expired(struct timeout_list *list, struct timeout_node *node)
{
    struct http1_conn *conn = (struct http1_conn *)((char *)node - offsetof(struct http1_conn, timeout));
    conn_close_for(conn, list == &conn->server->idle ? STATS_CLOSE_IDLE : STATS_CLOSE_REQUEST_TIMEOUT);
}

/* ---- connection life ---- */

/* Frees what the response in flight owns: the unwritten output, or the held description. */
static void conn_free_output(struct http1_conn *conn)
{
    if (conn->state == CONN_HELD) {
        if (conn->held_response != NULL) {
            handler_response_release(&conn->held_response->response);
            free(conn->held_response);
            conn->held_response = NULL;
        }
        return;
    }
    if (conn->output == NULL)
        return;
    if (conn->output->paced != NULL) {
        request_core_pace_stop(conn->server->core, &conn->output->paced->next_part);
        free(conn->output->paced);
    }
    free(conn->output->head);
    free(conn->output->owned_body);
    free(conn->output);
    conn->output = NULL;
}

static void conn_close(struct http1_conn *conn)
{
    struct http1_server *server = conn->server;
    ev_io_stop(server->loop, &conn->watcher);
    if (conn->held.on_due == on_hang_timeout)
        request_core_hang_cancel(server->core, &conn->held);
    else
        request_core_cancel(server->core, &conn->held); /* only if it was held */
    timeout_remove(conn);
    SSL *ssl = conn_ssl(conn);
    if (ssl != NULL)
        tls_io_close(ssl);
    close(conn->watcher.fd);
    request_core_connection_closed(server->core, (enum listener_kind)conn->kind, (enum stats_close_reason)conn->close_reason);
    conn_free_output(conn);
    free(conn->saved);
    free(conn->body_wait);
    free(conn);
}

/* The connection speaks HTTP/2: h2o takes the socket and the bytes read so far. */
static void conn_hand_to_h2o(struct http1_conn *conn, const char *bytes, size_t len)
{
    struct http1_server *server = conn->server;
    ev_io_stop(server->loop, &conn->watcher);
    timeout_remove(conn);
    /* nothing read yet (h2c preface or Upgrade peeked, a TLS ClientHello offering h2): h2o's own
     * accept path, which also does the TLS handshake; else h2o starts from what we read */
    if (len == 0)
        h2o_frontend_accept(server->h2o, conn->watcher.fd, (enum listener_kind)conn->kind);
    else
        h2o_frontend_adopt(server->h2o, conn->watcher.fd, (enum listener_kind)conn->kind, bytes, len);
    conn_free_output(conn);
    free(conn->saved);
    free(conn->body_wait);
    free(conn);
}

static void conn_set_events(struct http1_conn *conn, int events)
{
    if (conn->watcher.events == events)
        return;
    struct ev_loop *loop = conn->server->loop;
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
        ev_feed_event(conn->server->loop, &conn->watcher, EV_READ);
}

/* The current response is fully written. Returns false if the connection is gone. */
static bool response_done(struct http1_conn *conn)
{
    conn_free_output(conn);
    if (conn->keep_alive && conn->server->core->draining)
        conn->close_reason = STATS_CLOSE_DRAIN; /* the drain began while the response was being written */
    if (!conn->keep_alive || conn->server->core->draining) {
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

static bool pace_next_part(struct http1_conn *conn);

/* Everything handed to the socket so far is written: the response is done, or a paced body waits
 * for its next part. Returns false if the connection is gone. */
static bool output_done(struct http1_conn *conn)
{
    const struct pending_output *out = conn->output;
    if (out != NULL && out->paced != NULL && out->paced->parts_sent < out->paced->pace.parts)
        return pace_next_part(conn);
    return response_done(conn);
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
        return output_done(conn);
    struct pending_output *out = conn->output; /* a paced body keeps its own from head to last part */
    if (out == NULL)
        out = calloc(1, sizeof(*out));
    if (out == NULL) {
        conn_close_for(conn, STATS_CLOSE_OTHER);
        return false;
    }
    size_t head_written = written < head_len ? written : head_len;
    size_t body_written = written - head_written;
    out->head_len = head_len - head_written;
    free(out->head); /* a paced body's output may still hold its written head's buffer */
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
        conn_close_for(conn, STATS_CLOSE_OTHER);
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
        output_done(conn);
        return;
    }
    /* A client that reads, however slowly, keeps its connection (nginx's send_timeout does the same):
     * --request-timeout runs from the last progress, so a large body to a slow reader is not cut
     * off, while one that stops reading is closed. O(1): the connection moves to the list's tail. */
    if (written != 0)
        timeout_add(&conn->server->request, conn, clock_monotonic_ns());
}

/* ---- responses ---- */

/* What the garbage fault writes: no status line, a NUL and bytes that are not even text, so any
 * HTTP/1 parser refuses it at its first byte. */
static const char fault_garbage_bytes[] = "\x01MOCKUPSTREAM FAULT garbage \x00\xff\xfe this is not HTTP\r\n\r\n";

static bool send_response(struct http1_conn *conn, const struct handler_response *res);

/* A hang's --request-timeout ran out: the client gets a close, as for any request over its time. */
static void on_hang_timeout(struct delay_entry *entry, uint64_t now_ns)
{
    struct http1_conn *conn = (struct http1_conn *)((char *)entry - offsetof(struct http1_conn, held));
    request_core_hang_over(conn->server->core);
    conn_close_for(conn, STATS_CLOSE_FAULT);
}

/* Carries out res->fault instead of the response (after its delay, as the response would have been
 * sent). Only the faulted connection is touched. Returns false if the connection is gone. */
static bool conn_fault(struct http1_conn *conn, const struct handler_response *res)
{
    struct http1_server *server = conn->server;
    enum fault_kind kind = (enum fault_kind)res->fault;
    SSL *ssl = conn_ssl(conn);
    if (kind == FAULT_HANG) {
        /* never answered: reads go on (a client that leaves is seen), input stays unprocessed */
        conn->state = CONN_HELD;
        conn->held.on_due = on_hang_timeout;
        request_core_hang(server->core, &conn->held, clock_monotonic_ns());
        return true;
    }
    request_core_fault(server->core, kind);
    conn->keep_alive = false;
    conn->close_reason = STATS_CLOSE_FAULT;
    switch (kind) {
    case FAULT_RESET: {
        /* SO_LINGER 0: close() sends RST, not FIN; over TLS not even a close_notify first */
        struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};
        setsockopt(conn->watcher.fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
        if (ssl != NULL)
            SSL_set_quiet_shutdown(ssl, 1);
        conn_close(conn);
        return false;
    }
    case FAULT_CLOSE:
        /* FIN (after a close_notify over TLS), no response */
        shutdown(conn->watcher.fd, SHUT_WR);
        conn_close(conn);
        return false;
    case FAULT_PARTIAL: {
        /* the head announces the whole body; half of it comes, then the FIN (response_done closes) */
        struct http1_response_bytes bytes;
        if (http1_response_format(&server->responses, res, false, &bytes) != 0 || bytes.head == NULL) {
            conn_close_for(conn, STATS_CLOSE_OTHER);
            return false;
        }
        return conn_write(conn, bytes.head, bytes.head_len, bytes.body, bytes.body_len / 2, res->body_source != HANDLER_BODY_TEXT);
    }
    case FAULT_GARBAGE:
        return conn_write(conn, fault_garbage_bytes, sizeof(fault_garbage_bytes) - 1, NULL, 0, true);
    default:
        return send_response(conn, res); /* unreachable: FAULT_NONE is sent */
    }
}

/* Counts a response against --max-requests-per-connection and --max-connection-age: false (and the
 * reason recorded) if this response must be the connection's last, else keep_alive. */
static bool conn_within_limits(struct http1_conn *conn, bool keep_alive)
{
    const struct config *cfg = conn->server->config;
    uint32_t max_requests = cfg->max_requests_per_connection;
    if (max_requests != 0 && ++conn->responses_sent >= max_requests) {
        if (keep_alive)
            conn->close_reason = STATS_CLOSE_MAX_REQUESTS;
        return false;
    }
    /* wrap-safe: ages are below 2^31 ms (config limits --max-connection-age to 24 days) */
    if (cfg->max_connection_age_ns != 0 && (int32_t)((uint32_t)(clock_monotonic_ns() / NS_PER_MS) - conn->age_deadline_ms) >= 0) {
        if (keep_alive)
            conn->close_reason = STATS_CLOSE_MAX_AGE;
        return false;
    }
    return keep_alive;
}

/* ---- paced bodies (dribble=, rate=) ---- */

/* Writes the next part (a slow reader's unwritten part goes on as any response does, under
 * --request-timeout). The next part's time runs from the head, not from this write, so a late part
 * does not push the others later. */
static bool write_next_part(struct paced_body *paced)
{
    struct http1_conn *conn = paced->conn;
    size_t from = handler_pace_part_end(&paced->pace, paced->body_len, paced->parts_sent);
    size_t to = handler_pace_part_end(&paced->pace, paced->body_len, ++paced->parts_sent);
    conn->state = CONN_READING; /* between pacing and writing: conn_write decides what comes next */
    return conn_write(conn, NULL, 0, paced->body + from, to - from, true);
}

static void on_part_due(struct delay_entry *entry, uint64_t now_ns)
{
    write_next_part((struct paced_body *)((char *)entry - offsetof(struct paced_body, next_part)));
}

/* Queues the next part. The connection reads on meanwhile (a client that leaves is seen, pipelined
 * requests are kept as behind a held response) and is on no timeout list: the wait is the server's.
 * Returns false if the connection is gone. */
static bool pace_next_part(struct http1_conn *conn)
{
    struct paced_body *paced = conn->output->paced;
    conn->state = CONN_PACING;
    timeout_remove(conn);
    conn_set_events(conn, conn->read_paused ? 0 : EV_READ);
    uint64_t offset_ns = handler_pace_part_due_ns(&paced->pace, paced->parts_sent + 1);
    if (request_core_pace(conn->server->core, &paced->next_part, paced->head_sent_ns, offset_ns) != 0) {
        /* out of memory in the queue: the rest of the body goes now, as one last part */
        paced->parts_sent = paced->pace.parts - 1;
        return write_next_part(paced);
    }
    return true;
}

/* Sends the head of a paced response; its parts follow from pace_next_part. Returns false if the
 * connection is gone. */
static bool send_paced(struct http1_conn *conn, const struct handler_response *res, const char *head, size_t head_len)
{
    struct pending_output *out = calloc(1, sizeof(*out));
    struct paced_body *paced = out ? calloc(1, sizeof(*paced)) : NULL;
    if (paced == NULL) {
        free(out);
        conn_close_for(conn, STATS_CLOSE_OTHER);
        return false;
    }
    *paced = (struct paced_body){.conn = conn, .body = res->body, .body_len = res->body_len, .pace = res->pace,
                                 .head_sent_ns = clock_monotonic_ns()};
    paced->next_part.on_due = on_part_due;
    out->paced = paced;
    conn->output = out;
    return conn_write(conn, head, head_len, NULL, 0, true);
}

/* Sends `res` (head from the preformatted default when it is the default answer) and counts it.
 * The response borrows res's storage: it is written or copied before this returns. Returns false if
 * the connection is gone. */
static bool send_response(struct http1_conn *conn, const struct handler_response *res)
{
    struct http1_server *server = conn->server;
    if (res->fault != FAULT_NONE)
        return conn_fault(conn, res);
    bool keep_alive = conn->keep_alive;
    if (keep_alive && server->core->draining) {
        keep_alive = false;
        conn->close_reason = STATS_CLOSE_DRAIN;
    }
    if (server->connection_limits)
        keep_alive = conn_within_limits(conn, keep_alive);
    conn->keep_alive = keep_alive;
    struct http1_response_bytes bytes;
    /* the configured body and the fill never move: point at them, never copy (a 16 MiB size= to a
     * slow reader would otherwise cost 16 MiB of memory per request) */
    bool immutable_body = res->body_source == HANDLER_BODY_BENCHMARK || res->body_source == HANDLER_BODY_FILL;
    if (handler_response_is_default_benchmark(res)) {
        bytes = http1_response_default(&server->responses, keep_alive, res->is_head);
    } else if (http1_response_format(&server->responses, res, keep_alive, &bytes) != 0) {
        conn_close_for(conn, STATS_CLOSE_OTHER);
        return false;
    }
    if (bytes.head == NULL) {
        conn_close_for(conn, STATS_CLOSE_OTHER);
        return false;
    }
    struct request_core_outcome outcome = {.protocol = STATS_PROTOCOL_HTTP1, .listener = (enum listener_kind)conn->kind,
                                           .response = res, .request_body_bytes = conn->body_bytes,
                                           .response_body_bytes = res->is_head ? 0 : res->body_len};
    request_core_count(server->core, &outcome);
    if (res->pace.parts != 0 && immutable_body && !res->is_head)
        return send_paced(conn, res, bytes.head, bytes.head_len);
    /* the preformatted default holds its head in a buffer rebuilt each second: copy what is left
     * unwritten (conn_write does), never point at it */
    return conn_write(conn, bytes.head, bytes.head_len, bytes.body, bytes.body_len, immutable_body);
}

/* A request the parser refused: answer (the body says why, so a client author can tell which rule
 * their client broke) and close once written. */
static void send_refusal(struct http1_conn *conn, int status, const char *why)
{
    struct handler_response res;
    char body[192];
    snprintf(body, sizeof(body), "%d %s: %s\n", status, handler_reason_phrase(status), why);
    handler_response_text(&res, conn->kind == LISTENER_STATS ? HANDLER_KIND_CONTROL : HANDLER_KIND_BENCHMARK, status,
                          body, false);
    conn->keep_alive = false;
    conn->close_reason = STATS_CLOSE_PROTOCOL_ERROR;
    conn->body_bytes = 0;
    conn->in_body = false;
    send_response(conn, &res);
}

static void on_held_due(struct delay_entry *entry, uint64_t now_ns)
{
    struct http1_conn *conn = (struct http1_conn *)((char *)entry - offsetof(struct http1_conn, held));
    struct http1_server *server = conn->server;
    request_core_release(server->core, entry, STATS_ARRIVAL_KERNEL, clock_monotonic_ns());
    struct held_response *held = conn->held_response;
    conn->held_response = NULL;
    conn->state = CONN_READING; /* between held and writing: conn_write decides what comes next */
    if (held == NULL) {
        struct handler_response res;
        handler_response_default(&res, server->config, conn->is_head);
        send_response(conn, &res);
        return;
    }
    send_response(conn, &held->response);
    handler_response_release(&held->response);
    free(held);
}

/* The request is complete (head and body): decide the answer and send it now or after its delay.
 * Returns false if the connection is gone. */
static bool dispatch(struct http1_conn *conn, const struct request_view *view)
{
    struct http1_server *server = conn->server;
    struct handler_request request = {.method = view->method, .method_len = view->method_len, .path = view->path,
                                      .path_len = view->path_len, .listener = (enum listener_kind)conn->kind,
                                      .headers = view->controls};
    /* head to last byte: a client whose requests straggle (a head, then its body ~40 ms later behind
     * Nagle) shows up in the receive-time histogram */
    request_core_received(server->core, server->input_arrival_ns - view->head_arrival_ns);
    struct handler_response res;
    request_core_decide(server->core, &request, &res);
    conn->served_a_request = true;
    conn->is_head = res.is_head;
    timeout_remove(conn);
    /* never due before delay after the previous response's due time: pipelined or early requests
     * are answered one after the other, in order */
    uint64_t arrival_ns = server->config->delay_from_head ? view->head_arrival_ns : server->input_arrival_ns;
    if (arrival_ns < conn->held.due_ns)
        arrival_ns = conn->held.due_ns;
    struct held_response *held = NULL;
    if (res.delay_ns != 0 && !handler_response_is_default_benchmark(&res)) {
        held = malloc(sizeof(*held));
        if (held == NULL) {
            handler_response_release(&res);
            handler_response_text(&res, HANDLER_KIND_BENCHMARK, 503, "out of memory holding the request\n", conn->is_head);
        }
    }
    conn->held.on_due = on_held_due;
    switch (request_core_start(server->core, &conn->held, &res, arrival_ns)) {
    case REQUEST_CORE_HELD:
        conn->state = CONN_HELD;
        if (held != NULL) {
            held->response = res; /* owns any rendered storage from here on */
            conn->held_response = held;
        } else {
            handler_response_release(&res);
        }
        return true;
    case REQUEST_CORE_REFUSED:
        conn->keep_alive = false;
        break;
    case REQUEST_CORE_SEND_NOW:
        break;
    }
    free(held);
    bool alive = send_response(conn, &res);
    handler_response_release(&res);
    return alive;
}

/* ---- input ---- */

static struct request_view request_view_of(const struct http1_request *req, uint64_t head_arrival_ns)
{
    return (struct request_view){.method = req->method, .method_len = req->method_len, .path = req->path,
                                 .path_len = req->path_len, .controls = req->controls, .head_arrival_ns = head_arrival_ns};
}

/* Copies `view` and the bytes it points at into one allocation. NULL if out of memory. */
static struct body_wait *body_wait_new(const struct request_view *view)
{
    size_t total = view->method_len + view->path_len;
    for (int i = 0; i < REQUEST_CONTROL_COUNT; i++)
        total += view->controls.of[i].len;
    struct body_wait *wait = malloc(sizeof(*wait) + total);
    if (wait == NULL)
        return NULL;
    wait->view = *view;
    char *at = wait->bytes;
    memcpy(at, view->method, view->method_len);
    wait->view.method = at;
    at += view->method_len;
    memcpy(at, view->path, view->path_len);
    wait->view.path = at;
    at += view->path_len;
    for (int i = 0; i < REQUEST_CONTROL_COUNT; i++) {
        const struct request_control_value *field = &view->controls.of[i];
        if (field->value == NULL)
            continue;
        memcpy(at, field->value, field->len);
        wait->view.controls.of[i].value = at;
        at += field->len;
    }
    return wait;
}

/* Discards body bytes at buf. Returns bytes consumed, or -1 if the body is malformed or too large. */
static ssize_t consume_body(struct http1_conn *conn, char *buf, size_t len, bool *complete)
{
    uint64_t max_body = conn->server->config->max_body_bytes;
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
    const struct config *cfg = conn->server->config;
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
            struct body_wait *wait = conn->body_wait;
            conn->body_wait = NULL;
            bool alive = dispatch(conn, &wait->view);
            free(wait);
            if (!alive)
                return -1;
            continue;
        }
        if (off == len)
            return (ssize_t)off;
        /* h2c exists only in cleartext: over TLS, HTTP/2 is chosen by ALPN before we get here */
        bool cleartext = conn->kind != LISTENER_TLS;
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
            struct request_view view = request_view_of(&req, conn->server->input_arrival_ns);
            if (!dispatch(conn, &view))
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
        struct request_view view = request_view_of(&req, conn->server->input_arrival_ns);
        conn->body_wait = body_wait_new(&view);
        if (conn->body_wait == NULL) {
            conn_close_for(conn, STATS_CLOSE_OTHER);
            return -1;
        }
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
            conn_close_for(conn, STATS_CLOSE_OTHER);
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
    if (!conn->first_read_peeked && conn->kind != LISTENER_TLS && hand_over_unread_if_http2(conn))
        return;
    size_t have = conn->saved_len;
    if (have + HTTP1_MAX_HEAD_BYTES > server->scratch_size) {
        /* cannot happen while saved input is bounded; refuse rather than overflow */
        conn_close_for(conn, STATS_CLOSE_OTHER);
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
        conn_close_for(conn, STATS_CLOSE_OTHER);
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
        conn_close_for(conn, STATS_CLOSE_PROTOCOL_ERROR);
        return;
    }
}

static void on_conn_io(struct ev_loop *loop, ev_io *watcher, int revents)
{
    struct http1_conn *conn = watcher->data;
    struct request_core *core = conn->server->core;
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
    delay_queue_fire_due(core->delays);
}

/* ---- public ---- */

int http1_server_init(struct http1_server *server, struct ev_loop *loop, struct request_core *core, struct h2o_frontend *h2o,
                      SSL_CTX *ssl_ctx)
{
    memset(server, 0, sizeof(*server));
    server->loop = loop;
    server->core = core;
    server->config = core->config;
    server->h2o = h2o;
    server->ssl_ctx = ssl_ctx;
    if (ssl_ctx != NULL && tls_io_global_init() != 0)
        return -1;
    server->scratch_size = SCRATCH_BYTES;
    server->scratch = malloc(server->scratch_size);
    if (server->scratch == NULL)
        return -1;
    http1_response_init(&server->responses, server->config);
    server->connection_limits = server->config->max_requests_per_connection != 0 || server->config->max_connection_age_ns != 0;
    timeout_list_init(&server->idle, loop, server->config->idle_timeout_ns, on_timeout_expired, server);
    timeout_list_init(&server->request, loop, server->config->request_timeout_ns, on_timeout_expired, server);
    return 0;
}

void http1_server_accept(struct http1_server *server, int fd, enum listener_kind kind)
{
    bool tls = kind == LISTENER_TLS;
    struct http1_conn *conn = calloc(1, tls ? sizeof(struct http1_tls_conn) : sizeof(struct http1_conn));
    if (conn == NULL) {
        close(fd);
        request_core_connection_closed(server->core, kind, STATS_CLOSE_OTHER);
        return;
    }
    conn->server = server;
    conn->kind = (uint8_t)kind;
    conn->state = tls ? CONN_TLS_HELLO : CONN_READING;
    conn->keep_alive = true;
    if (server->config->max_connection_age_ns != 0)
        conn->age_deadline_ms = (uint32_t)((clock_monotonic_ns() + request_core_connection_age_limit_ns(server->core)) / NS_PER_MS);
    if (tls)
        ((struct http1_tls_conn *)conn)->socket = (struct tls_io_socket){.fd = fd, .arrivals = &server->arrivals};
    ev_io_init(&conn->watcher, on_conn_io, fd, EV_READ);
    conn->watcher.data = conn;
    ev_io_start(server->loop, &conn->watcher);
    /* a TLS handshake is bounded like a request (h2o's handshake timeout was 10 s, the default) */
    timeout_add(tls ? &server->request : &server->idle, conn, clock_monotonic_ns());
}

void http1_server_request_shutdown(struct http1_server *server)
{
    while (server->idle.head != NULL)
        conn_close_for((struct http1_conn *)((char *)server->idle.head - offsetof(struct http1_conn, timeout)), STATS_CLOSE_DRAIN);
}

size_t http1_server_responses_in_flight(const struct http1_server *server)
{
    /* a connection writing a response is on the request list (its write deadline); only a drain asks,
     * every 10 ms, so a walk of that list is cheaper than keeping a count on every write */
    size_t writing = 0;
    for (const struct timeout_node *node = server->request.head; node != NULL; node = node->next) {
        const struct http1_conn *conn = (const struct http1_conn *)((const char *)node - offsetof(struct http1_conn, timeout));
        writing += conn->state == CONN_WRITING;
    }
    return writing;
}
