/* h2o_limits_conn: what h2o_limits.c (catching connections, the request-timeout sweep) and
 * h2o_limits_frames.c (the per-frame guard) share. Private to those two files.
 *
 * TOUCHES h2o 2.2.5 INTERNALS, like them: see h2o_limits.h. */
#ifndef MOCKUPSTREAM_H2O_LIMITS_CONN_H
#define MOCKUPSTREAM_H2O_LIMITS_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include <h2o.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h>

typedef ssize_t (*read_expect_fn)(h2o_http2_conn_t *conn, const uint8_t *src, size_t len, const char **err_desc);

struct h2o_limits {
    struct ev_loop *loop;
    h2o_context_t *contexts[2];
    uint64_t request_timeout_ns;
    uint32_t max_streams;
    ev_timer sweep;
};

/* One per HTTP/2 connection, from the first time it is seen until its socket closes. */
struct conn_guard {
    struct h2o_limits *limits;
    void (*chained_close_cb)(void *data); /* the socket's on_close before ours */
    void *chained_close_data;
    read_expect_fn inner;      /* the parser h2o chose for the next frame */
    read_expect_fn frame_fn;   /* h2o's parser for frames outside a header block, once known */
    bool preface_done;
    bool in_block;             /* h2o is inside a header block (HEADERS without END_HEADERS) */
    bool block_is_trailer;
    bool discarding_block;     /* we answered 431: the rest of this block is dropped here */
    bool closing;              /* a close was started here; h2o finishes it */
    uint32_t block_stream_id;
    uint32_t block_frames;     /* CONTINUATION frames in the current block */
    uint64_t block_started_ns;
    uint32_t idle_frames;      /* frames that did nothing, in the window below */
    uint64_t idle_window_ns;
    size_t seen_bytes_written; /* output progress at the previous sweep */
    uint64_t seen_bytes_acked;
    bool acked_sampled;        /* seen_bytes_acked is from the previous sweep */
    uint64_t output_progress_ns; /* 0: no output pending at the last sweep */
};

/* The guard of `conn`, or NULL if it has none (yet). */
struct conn_guard *h2o_limits_guard_of(h2o_http2_conn_t *conn);

/* The parser put in conn->_read_expect of every guarded connection (h2o_limits_frames.c). */
ssize_t h2o_limits_read_expect(h2o_http2_conn_t *conn, const uint8_t *src, size_t len, const char **err_desc);

/* Queues a SETTINGS frame advertising `max_streams` (nothing if that is h2o's own 100). */
void h2o_limits_send_max_streams(h2o_http2_conn_t *conn, uint32_t max_streams);

/* GOAWAY naming the last stream h2o opened, then "half closed": h2o takes no new stream, finishes the
 * responses it has begun and closes (do_emit_writereq, 1059-1066). What h2o's enqueue_goaway (74-82)
 * does; that function is static. */
void h2o_limits_send_goaway(h2o_http2_conn_t *conn, int errnum, const char *debug);

/* gettimeofday(): h2o keeps request timestamps (req->timestamps) as wall-clock timevals. */
static inline struct timeval h2o_limits_timeval_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv;
}

#endif
