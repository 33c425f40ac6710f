/* h2o_limits: catching h2o's HTTP/2 connections, their guards' state, and the request-timeout sweep.
 * The per-frame guard is in h2o_limits_frames.c. See h2o_limits.h. Touches h2o 2.2.5 internals. */
#include "h2o_limits.h"

#include <dlfcn.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked (glibc's lacks it) */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "clock.h"
#include "h2o_frontend.h"
#include "h2o_limits_conn.h"

#define SWEEP_JITTER_NS (5 * NS_PER_MS)

typedef void (*http2_accept_fn)(h2o_accept_ctx_t *ctx, h2o_socket_t *sock, struct timeval connected_at);
typedef int (*http2_upgrade_fn)(h2o_req_t *req, struct timeval connected_at);

/* Process-wide, set once: libh2o's own h2o_http2_accept and h2o_http2_handle_upgrade (behind ours,
 * see below), and the slot of each h2o context's storage that holds its worker's h2o_limits. */
static http2_accept_fn library_http2_accept;
static http2_upgrade_fn library_http2_upgrade;
static size_t limits_storage_key = SIZE_MAX;

/* ---- time ---- */

static uint64_t timeval_to_ns(struct timeval tv)
{
    return (uint64_t)tv.tv_sec * NS_PER_SEC + (uint64_t)tv.tv_usec * NS_PER_US;
}

/* ---- per-connection state, carried by the socket's on_close ---- */

static void on_socket_close(void *data)
{
    struct conn_guard *guard = data;
    void (*cb)(void *) = guard->chained_close_cb;
    void *cb_data = guard->chained_close_data;
    free(guard);
    if (cb != NULL)
        cb(cb_data);
}

struct conn_guard *h2o_limits_guard_of(h2o_http2_conn_t *conn)
{
    if (conn->sock == NULL || conn->sock->on_close.cb != on_socket_close)
        return NULL;
    return conn->sock->on_close.data;
}

/* True while `fn` is h2o's preface parser (expect_preface, 847-865). h2o's three parsers are static,
 * so they are told apart by behaviour: a 24-byte frame header announcing 16,384 bytes makes the frame
 * parsers answer INCOMPLETE and the preface parser (no "PRI *") CLOSE_IMMEDIATELY; none of them has
 * a side effect on that input. */
static bool awaits_preface(h2o_http2_conn_t *conn, read_expect_fn fn)
{
    static const uint8_t probe[24] = {0x00, 0x40, 0x00, 0xff};
    const char *err_desc = NULL;
    return fn(conn, probe, sizeof(probe), &err_desc) == H2O_HTTP2_ERROR_PROTOCOL_CLOSE_IMMEDIATELY;
}

/* Streams h2o stamped before the guard was on may carry a stale time (h2o's timestamp cache follows
 * its loop clock): restamp them now, which can only give them more time, never less. */
static void restamp_receiving_streams(h2o_http2_conn_t *conn)
{
    struct timeval now = h2o_limits_timeval_now();
    h2o_http2_stream_t *stream;
    kh_foreach_value(conn->streams, stream, {
        if (stream->state == H2O_HTTP2_STREAM_STATE_RECV_HEADERS || stream->state == H2O_HTTP2_STREAM_STATE_RECV_BODY)
            stream->req.timestamps.request_begin_at = now;
    });
}

/* The state for `conn`, hung on `sock`'s on_close (the socket h2o gives the connection; for an h2c
 * Upgrade, before h2o does). NULL if out of memory: the connection then runs as h2o alone would run
 * it, and the next sweep tries again. */
static struct conn_guard *guard_create(struct h2o_limits *limits, h2o_http2_conn_t *conn, h2o_socket_t *sock)
{
    struct conn_guard *guard = calloc(1, sizeof(*guard));
    if (guard == NULL)
        return NULL;
    guard->limits = limits;
    guard->chained_close_cb = sock->on_close.cb;
    guard->chained_close_data = sock->on_close.data;
    sock->on_close.cb = on_socket_close;
    sock->on_close.data = guard;
    guard->idle_window_ns = clock_monotonic_ns();
    guard->seen_bytes_written = sock->bytes_written;
    guard->preface_done = !awaits_preface(conn, conn->_read_expect);
    guard->in_block = conn->_headers_unparsed != NULL;
    if (guard->in_block)
        guard->block_started_ns = clock_monotonic_ns();
    else if (guard->preface_done)
        guard->frame_fn = conn->_read_expect;
    if (guard->preface_done)
        h2o_limits_send_max_streams(conn, limits->max_streams);
    restamp_receiving_streams(conn);
    return guard;
}

static void guard_wrap(struct conn_guard *guard, h2o_http2_conn_t *conn)
{
    guard->inner = conn->_read_expect;
    conn->_read_expect = h2o_limits_read_expect;
}

/* Puts the guard on `conn`. Returns false if it cannot be done (yet). */
static bool guard_attach(struct h2o_limits *limits, h2o_http2_conn_t *conn)
{
    if (conn->_read_expect == h2o_limits_read_expect)
        return true;
    /* No socket: an h2c Upgrade whose 101 is being written, not guarded by h2o_http2_handle_upgrade
     * (out of memory then). A socket that does not point back at the connection: this libh2o's
     * layout is not the one compiled against; leave it alone. */
    if (conn->sock == NULL || conn->sock->data != conn)
        return false;
    struct conn_guard *guard = h2o_limits_guard_of(conn);
    if (guard == NULL && (guard = guard_create(limits, conn, conn->sock)) == NULL)
        return false;
    guard_wrap(guard, conn);
    return true;
}

/* ---- closing, by h2o's own paths ---- */

/* GOAWAY, then make h2o close now. The socket is shut down, not closed: h2o sees end-of-input (or a
 * failed write) at its next turn and runs its close path, which frees the streams and closes the fd.
 * If a write is stuck because the client does not read, RST on close (linger 0): no FIN can get
 * behind data the client will never take, and the kernel does not keep it. */
static void close_now(h2o_http2_conn_t *conn, struct conn_guard *guard, int errnum, const char *debug)
{
    int fd = h2o_socket_get_fd(conn->sock);
    guard->closing = true;
    /* h2o also stops reading while 512 KiB of output is unsent (Debian's 743d6b6): no EOF would reach it */
    if (conn->_write.buf_in_flight != NULL || !h2o_socket_is_reading(conn->sock) ||
        conn->state == H2O_HTTP2_CONN_STATE_IS_CLOSING) {
        struct linger reset = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
        shutdown(fd, SHUT_RDWR);
        return;
    }
    h2o_limits_send_goaway(conn, errnum, debug);
    shutdown(fd, SHUT_RD);
}

/* ---- the sweep: --request-timeout for HTTP/2 ---- */

/* True if a request on `conn` has been incomplete (header block or body) for `timeout_ns`. */
static bool request_overdue(h2o_http2_conn_t *conn, struct conn_guard *guard, uint64_t now_ns, uint64_t timeout_ns)
{
    if (guard->in_block && now_ns - guard->block_started_ns >= timeout_ns)
        return true;
    /* open minus half-closed: streams still receiving (or queued); none is the common case, O(1) */
    if (conn->num_streams.pull.open <= conn->num_streams.pull.half_closed)
        return false;
    uint64_t wall_now_ns = timeval_to_ns(h2o_limits_timeval_now());
    h2o_http2_stream_t *stream;
    kh_foreach_value(conn->streams, stream, {
        if (stream->state == H2O_HTTP2_STREAM_STATE_RECV_HEADERS || stream->state == H2O_HTTP2_STREAM_STATE_RECV_BODY) {
            uint64_t began_ns = timeval_to_ns(stream->req.timestamps.request_begin_at);
            if (wall_now_ns > began_ns && wall_now_ns - began_ns >= timeout_ns)
                return true;
        }
    });
    return false;
}

static uint64_t bytes_acked(h2o_socket_t *sock)
{
    struct tcp_info info;
    socklen_t len = sizeof(info);
    memset(&info, 0, sizeof(info));
    if (getsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
        return 0;
    return info.tcpi_bytes_acked;
}

/* A stream sending its body has data h2o holds for the client (its window or the socket is the
 * limit). One with none is waiting for its own generator: the server, as a paced body (dribble=,
 * rate=) does between parts, which is no client's stall. Walked only when no bytes are waiting in
 * the connection's buffers. */
static bool streams_hold_data(h2o_http2_conn_t *conn)
{
    if (conn->num_streams.pull.send_body + conn->num_streams.push.send_body == 0)
        return false;
    bool holding = false;
    h2o_http2_stream_t *stream;
    kh_foreach_value(conn->streams, stream, {
        holding |= (stream->state == H2O_HTTP2_STREAM_STATE_SEND_BODY || stream->state == H2O_HTTP2_STREAM_STATE_SEND_BODY_IS_FINAL) &&
                   stream->_data.size != 0;
    });
    return holding;
}

/* True if response bytes have waited on the client (a closed flow-control window, a socket it does
 * not read) with no progress for `timeout_ns`. Progress: h2o handed more bytes to the socket, or the
 * client acknowledged more (TCP_INFO, asked only when h2o wrote nothing new, so busy connections cost
 * no system call). `output_progress_ns` is the sweep that last saw progress (or pending output
 * begin): the stall measured from it is never longer than the real one, and at most one sweep
 * shorter. */
static bool output_stalled(h2o_http2_conn_t *conn, struct conn_guard *guard, uint64_t now_ns, uint64_t timeout_ns)
{
    bool pending = conn->_write.buf_in_flight != NULL || conn->_write.buf->size != 0 || streams_hold_data(conn);
    size_t written = conn->sock->bytes_written;
    bool progress = written != guard->seen_bytes_written;
    guard->seen_bytes_written = written;
    if (!pending) {
        guard->output_progress_ns = 0;
        guard->acked_sampled = false;
        return false;
    }
    if (progress) {
        guard->acked_sampled = false;
    } else {
        uint64_t acked = bytes_acked(conn->sock);
        progress = guard->acked_sampled && acked != guard->seen_bytes_acked;
        guard->seen_bytes_acked = acked;
        guard->acked_sampled = true;
    }
    if (progress || guard->output_progress_ns == 0) {
        guard->output_progress_ns = now_ns;
        return false;
    }
    /* sweeps come H2O_LIMITS_SWEEP_MS apart give or take the loop's timer rounding (~1 ms); without
     * the allowance a stall seen at one sweep would often wait for one more */
    return now_ns - guard->output_progress_ns + SWEEP_JITTER_NS >= timeout_ns;
}

static void sweep_context(struct h2o_limits *limits, h2o_context_t *ctx, uint64_t now_ns)
{
    for (h2o_linklist_t *node = ctx->http2._conns.next; node != &ctx->http2._conns; node = node->next) {
        h2o_http2_conn_t *conn = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, node);
        if (!guard_attach(limits, conn))
            continue;
        struct conn_guard *guard = h2o_limits_guard_of(conn);
        if (guard == NULL || guard->closing)
            continue;
        /* also when h2o is closing: it waits for a write to complete, which a client that does not
         * read never lets happen */
        if (output_stalled(conn, guard, now_ns, limits->request_timeout_ns)) {
            close_now(conn, guard, H2O_HTTP2_ERROR_NONE, "response not read within the request timeout");
        } else if (conn->state == H2O_HTTP2_CONN_STATE_OPEN && request_overdue(conn, guard, now_ns, limits->request_timeout_ns)) {
            /* graceful: held responses of this connection are still delivered; nothing new starts */
            h2o_limits_send_goaway(conn, H2O_HTTP2_ERROR_NONE, "request timeout");
        } else if (conn->state == H2O_HTTP2_CONN_STATE_HALF_CLOSED && request_overdue(conn, guard, now_ns, 2 * limits->request_timeout_ns)) {
            /* still here a timeout after that GOAWAY (or h2o's drain GOAWAY): stop waiting */
            close_now(conn, guard, H2O_HTTP2_ERROR_NONE, "request timeout");
        }
    }
}

static void on_sweep(struct ev_loop *loop, ev_timer *timer, int revents)
{
    struct h2o_limits *limits = timer->data;
    uint64_t now_ns = clock_monotonic_ns();
    for (size_t i = 0; i < sizeof(limits->contexts) / sizeof(limits->contexts[0]); i++)
        sweep_context(limits, limits->contexts[i], now_ns);
}

/* ---- catching new connections ---- */

static struct h2o_limits *limits_of(h2o_context_t *ctx)
{
    return limits_storage_key == SIZE_MAX ? NULL : *h2o_context_get_storage(ctx, &limits_storage_key, NULL);
}

/* Every HTTP/2 connection but an h2c Upgrade starts here: after a TLS handshake that chose h2
 * (lib/core/util.c) and after the prior-knowledge preface (lib/http1.c). libh2o calls it through its
 * PLT (a JUMP_SLOT relocation), so this definition in the executable is the one it reaches; it calls
 * libh2o's. h2o parses what is already buffered before returning (1345-1346): the buffer is hidden
 * for that call and parsed right after, with the guard on, the way h2o would have. */
void h2o_http2_accept(h2o_accept_ctx_t *accept_ctx, h2o_socket_t *sock, struct timeval connected_at)
{
    if (library_http2_accept == NULL)
        library_http2_accept = (http2_accept_fn)dlsym(RTLD_NEXT, "h2o_http2_accept");
    struct h2o_limits *limits = limits_of(accept_ctx->ctx);
    size_t buffered = sock->input->size;
    if (limits != NULL)
        sock->input->size = 0;
    library_http2_accept(accept_ctx, sock, connected_at);
    if (limits == NULL)
        return;
    sock->input->size = buffered;
    h2o_http2_conn_t *conn = sock->data;
    guard_attach(limits, conn);
    if (buffered != 0)
        sock->_cb.read(sock, NULL);
}

/* An h2c Upgrade (lib/http1.c 142): h2o creates the connection without a socket (1351) and gives it
 * the HTTP/1 connection's socket once the 101 is written, then parses what followed the request
 * (on_upgrade_complete, 911-938). The guard goes on now, on that same socket, so that parse is guarded
 * too. Called by libh2o through its PLT, like h2o_http2_accept. */
int h2o_http2_handle_upgrade(h2o_req_t *req, struct timeval connected_at)
{
    if (library_http2_upgrade == NULL)
        library_http2_upgrade = (http2_upgrade_fn)dlsym(RTLD_NEXT, "h2o_http2_handle_upgrade");
    int ret = library_http2_upgrade(req, connected_at);
    h2o_context_t *ctx = req->conn->ctx;
    struct h2o_limits *limits = limits_of(ctx);
    if (ret != 0 || limits == NULL || h2o_linklist_is_empty(&ctx->http2._conns))
        return ret;
    h2o_http2_conn_t *conn = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, ctx->http2._conns.prev);
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    /* the newest connection, still without its socket: the one just created (create_conn, 1210) */
    if (sock != NULL && conn->sock == NULL && conn->super.ctx == ctx && conn->_read_expect != h2o_limits_read_expect) {
        struct conn_guard *guard = guard_create(limits, conn, sock);
        if (guard != NULL)
            guard_wrap(guard, conn);
    }
    return ret;
}

void h2o_limits_before_block(struct h2o_limits *limits)
{
    for (size_t i = 0; i < sizeof(limits->contexts) / sizeof(limits->contexts[0]); i++) {
        h2o_linklist_t *anchor = &limits->contexts[i]->http2._conns;
        /* h2o appends new connections (create_conn, 1210): walk back to the first one guarded */
        for (h2o_linklist_t *node = anchor->prev; node != anchor; node = node->prev) {
            h2o_http2_conn_t *conn = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, node);
            if (conn->_read_expect == h2o_limits_read_expect)
                break;
            guard_attach(limits, conn);
        }
    }
}

/* ---- set-up ---- */

void h2o_limits_configure(h2o_globalconf_t *conf, const struct config *cfg)
{
    /* h2o runs at most this many requests of a connection at once and queues the rest; it must not
     * be lower than the streams a client may open */
    conf->http2.max_concurrent_requests_per_connection = cfg->http2_max_concurrent_streams;
    /* a TLS client that stops in its handshake is closed like one that stops in its request */
    conf->handshake_timeout = cfg->request_timeout_ns / NS_PER_MS;
}

struct h2o_limits *h2o_limits_start(struct ev_loop *loop, struct h2o_frontend *frontend, const struct config *cfg, char *err,
                                    size_t err_size)
{
    library_http2_accept = (http2_accept_fn)dlsym(RTLD_NEXT, "h2o_http2_accept");
    library_http2_upgrade = (http2_upgrade_fn)dlsym(RTLD_NEXT, "h2o_http2_handle_upgrade");
    if (library_http2_accept == NULL || library_http2_accept == h2o_http2_accept ||
        (http2_accept_fn)dlsym(RTLD_DEFAULT, "h2o_http2_accept") != h2o_http2_accept || library_http2_upgrade == NULL ||
        library_http2_upgrade == h2o_http2_handle_upgrade ||
        (http2_upgrade_fn)dlsym(RTLD_DEFAULT, "h2o_http2_handle_upgrade") != h2o_http2_handle_upgrade) {
        snprintf(err, err_size, "libh2o's h2o_http2_accept or h2o_http2_handle_upgrade is not reached through this program's");
        return NULL;
    }
    struct h2o_limits *limits = calloc(1, sizeof(*limits));
    if (limits == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    limits->loop = loop;
    limits->contexts[0] = &frontend->benchmark_ctx;
    limits->contexts[1] = &frontend->control_ctx;
    limits->request_timeout_ns = cfg->request_timeout_ns;
    limits->max_streams = cfg->http2_max_concurrent_streams;
    ev_timer_init(&limits->sweep, on_sweep, H2O_LIMITS_SWEEP_MS / 1000.0, H2O_LIMITS_SWEEP_MS / 1000.0);
    limits->sweep.data = limits;
    ev_timer_start(loop, &limits->sweep);
    for (size_t i = 0; i < sizeof(limits->contexts) / sizeof(limits->contexts[0]); i++)
        *h2o_context_get_storage(limits->contexts[i], &limits_storage_key, NULL) = limits;
    return limits;
}
