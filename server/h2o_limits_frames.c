/* h2o_limits_frames: the guard every HTTP/2 connection's frames pass through before h2o parses them
 * (conn->_read_expect): frames that do nothing, CONTINUATION bounds, header blocks too large to
 * buffer, header blocks after GOAWAY, the concurrent-stream limit, Expect: 100-continue. See
 * h2o_limits.h for the why of each. Touches h2o 2.2.5 internals (h2o/http2_internal.h). */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"
#include "h2o_limits.h"
#include "h2o_limits_conn.h"

static void append_to_output(h2o_http2_conn_t *conn, const uint8_t *bytes, size_t len)
{
    h2o_iovec_t room = h2o_buffer_reserve(&conn->_write.buf, len);
    memcpy(room.base, bytes, len);
    conn->_write.buf->size += len;
    h2o_http2_conn_request_write(conn);
}

/* A second SETTINGS frame after h2o's (which always says 100 streams): a client applies SETTINGS in
 * order, and both leave in the same write, so it never acts on the first alone. h2o accepts the
 * extra SETTINGS ACK (handle_settings_frame checks an ACK's length only, 681-685). */
void h2o_limits_send_max_streams(h2o_http2_conn_t *conn, uint32_t max_streams)
{
    if (max_streams == H2O_HTTP2_SETTINGS_HOST.max_concurrent_streams)
        return;
    uint8_t frame[H2O_HTTP2_FRAME_HEADER_SIZE + 6];
    h2o_http2_encode_frame_header(frame, 6, H2O_HTTP2_FRAME_TYPE_SETTINGS, 0, 0);
    uint8_t *p = frame + H2O_HTTP2_FRAME_HEADER_SIZE;
    *p++ = 0;
    *p++ = H2O_HTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    *p++ = (uint8_t)(max_streams >> 24);
    *p++ = (uint8_t)(max_streams >> 16);
    *p++ = (uint8_t)(max_streams >> 8);
    *p++ = (uint8_t)max_streams;
    append_to_output(conn, frame, sizeof(frame));
}

void h2o_limits_send_goaway(h2o_http2_conn_t *conn, int errnum, const char *debug)
{
    if (conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING)
        return;
    h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open, errnum,
                                  h2o_iovec_init(debug, strlen(debug)));
    h2o_http2_conn_request_write(conn);
    conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
}

struct frame_head {
    uint32_t length;
    uint8_t type;
    uint8_t flags;
    uint32_t stream_id;
};

static void frame_head_decode(const uint8_t *src, struct frame_head *head)
{
    head->length = (uint32_t)src[0] << 16 | (uint32_t)src[1] << 8 | src[2];
    head->type = src[3];
    head->flags = src[4];
    head->stream_id = ((uint32_t)src[5] << 24 | (uint32_t)src[6] << 16 | (uint32_t)src[7] << 8 | src[8]) & 0x7fffffff;
}

/* Counts a frame that did nothing; true once there were too many in a second. The clock is read
 * once per H2O_LIMITS_IDLE_FRAMES_PER_SECOND frames, not per frame. */
static bool idle_frame_over_limit(struct conn_guard *guard)
{
    if (++guard->idle_frames <= H2O_LIMITS_IDLE_FRAMES_PER_SECOND)
        return false;
    uint64_t now_ns = clock_monotonic_ns();
    if (now_ns - guard->idle_window_ns < NS_PER_SEC)
        return true;
    guard->idle_window_ns = now_ns;
    guard->idle_frames = 1;
    return false;
}

/* How much to take off h2o's count of open streams while it checks it against its fixed 100
 * (handle_incoming_request, 355), so that it refuses a stream exactly when `open_at_check` (the
 * streams open once this one is counted) passes our limit. Negative: added, for a limit below 100.
 * Applied around one call and undone right after it, so h2o's bookkeeping is never off outside. */
static int64_t open_streams_bias(uint32_t open_at_check, uint32_t max_streams)
{
    uint32_t h2o_max = H2O_HTTP2_SETTINGS_HOST.max_concurrent_streams;
    if (open_at_check <= max_streams && open_at_check > h2o_max)
        return (int64_t)open_at_check - h2o_max;
    if (open_at_check > max_streams && open_at_check <= h2o_max)
        return -((int64_t)h2o_max + 1 - open_at_check);
    return 0;
}

static bool expects_continue(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_EXPECT, -1);
    return i != -1 && h2o_lcstris(req->headers.entries[i].value.base, req->headers.entries[i].value.len,
                                  H2O_STRLIT("100-continue"));
}

/* `:status: 100` as HPACK "literal without indexing, indexed name" (static entry 8), so h2o's
 * encoder state is untouched. */
static void send_100_continue(h2o_http2_conn_t *conn, uint32_t stream_id)
{
    static const uint8_t block[] = {0x08, 0x03, '1', '0', '0'};
    uint8_t frame[H2O_HTTP2_FRAME_HEADER_SIZE + sizeof(block)];
    h2o_http2_encode_frame_header(frame, sizeof(block), H2O_HTTP2_FRAME_TYPE_HEADERS, H2O_HTTP2_FRAME_FLAG_END_HEADERS,
                                  (int32_t)stream_id);
    memcpy(frame + H2O_HTTP2_FRAME_HEADER_SIZE, block, sizeof(block));
    append_to_output(conn, frame, sizeof(frame));
}

/* Takes h2o out of the header block it is in, as if the block had ended, without decoding it. Only
 * when h2o's frame parser is known (it is unless the guard was put on inside this block). */
static void end_block_here(h2o_http2_conn_t *conn, struct conn_guard *guard)
{
    if (guard->frame_fn == NULL)
        return;
    h2o_buffer_dispose(&conn->_headers_unparsed);
    guard->inner = guard->frame_fn;
    guard->in_block = false;
}

/* A header block larger than h2o buffers (H2O_MAX_REQLEN): h2o would reset the stream with
 * REFUSED_STREAM, telling the client it may retry, and then fail the connection at the next
 * CONTINUATION (441-445, 416-419). Instead: answer 431 on the stream, drop the rest of the block
 * here, and GOAWAY: the block was never decoded, so HPACK state is lost and RFC 9113 4.3 requires
 * the connection to end (COMPRESSION_ERROR); responses already begun are finished first. */
static ssize_t refuse_oversized_block(h2o_http2_conn_t *conn, struct conn_guard *guard, const struct frame_head *head)
{
    if (guard->frame_fn == NULL) {
        /* guard put on in the middle of this block: h2o's own answer */
        return H2O_HTTP2_ERROR_INCOMPLETE;
    }
    h2o_http2_stream_t *stream = h2o_http2_conn_get_stream(conn, head->stream_id);
    end_block_here(conn, guard);
    guard->discarding_block = (head->flags & H2O_HTTP2_FRAME_FLAG_END_HEADERS) == 0;
    if (stream != NULL &&
        (stream->state == H2O_HTTP2_STREAM_STATE_RECV_HEADERS || stream->state == H2O_HTTP2_STREAM_STATE_RECV_BODY)) {
        /* the same state steps h2o takes to answer a request it will not process (364-366) */
        h2o_http2_stream_set_state(conn, stream, H2O_HTTP2_STREAM_STATE_REQ_PENDING);
        h2o_http2_stream_set_state(conn, stream, H2O_HTTP2_STREAM_STATE_SEND_HEADERS);
        h2o_send_error_generic(&stream->req, 431, "Request Header Fields Too Large", "request header fields too large\n", 0);
    }
    h2o_limits_send_goaway(conn, H2O_HTTP2_ERROR_COMPRESSION, "header block too large");
    return H2O_HTTP2_FRAME_HEADER_SIZE + head->length;
}

/* After h2o handled a HEADERS or CONTINUATION frame that ended a header block. */
static void on_block_complete(h2o_http2_conn_t *conn, struct conn_guard *guard, uint32_t stream_id)
{
    if (guard->block_is_trailer)
        return;
    h2o_http2_stream_t *stream = h2o_http2_conn_get_stream(conn, stream_id);
    if (stream != NULL && stream->state == H2O_HTTP2_STREAM_STATE_RECV_BODY && expects_continue(&stream->req))
        send_100_continue(conn, stream_id);
}

/* Runs h2o's parser for one frame and keeps the wrapper in place if h2o switched parsers. */
static ssize_t call_inner(h2o_http2_conn_t *conn, struct conn_guard *guard, const uint8_t *src, size_t len,
                          const char **err_desc)
{
    read_expect_fn before = guard->inner;
    ssize_t ret = before(conn, src, len, err_desc);
    if (conn->_read_expect != h2o_limits_read_expect) {
        guard->inner = conn->_read_expect;
        conn->_read_expect = h2o_limits_read_expect;
    }
    bool in_block = conn->_headers_unparsed != NULL;
    if (in_block && !guard->in_block) {
        guard->block_started_ns = clock_monotonic_ns();
        guard->block_frames = 0;
        if (guard->frame_fn == NULL)
            guard->frame_fn = before; /* a header block is only entered from the frame parser */
    }
    guard->in_block = in_block;
    return ret;
}

ssize_t h2o_limits_read_expect(h2o_http2_conn_t *conn, const uint8_t *src, size_t len, const char **err_desc)
{
    struct conn_guard *guard = h2o_limits_guard_of(conn);
    if (guard == NULL) {
        *err_desc = "internal error";
        return H2O_HTTP2_ERROR_INTERNAL;
    }
    if (!guard->preface_done) {
        ssize_t ret = call_inner(conn, guard, src, len, err_desc);
        if (ret > 0) {
            guard->preface_done = true;
            guard->frame_fn = guard->inner;
            h2o_limits_send_max_streams(conn, guard->limits->max_streams);
        }
        return ret;
    }

    struct frame_head head;
    if (len < H2O_HTTP2_FRAME_HEADER_SIZE)
        return H2O_HTTP2_ERROR_INCOMPLETE;
    frame_head_decode(src, &head);
    if (head.length > H2O_HTTP2_SETTINGS_HOST.max_frame_size)
        return call_inner(conn, guard, src, len, err_desc); /* h2o answers FRAME_SIZE_ERROR */
    if (len < H2O_HTTP2_FRAME_HEADER_SIZE + head.length)
        return H2O_HTTP2_ERROR_INCOMPLETE;
    ssize_t frame_bytes = H2O_HTTP2_FRAME_HEADER_SIZE + head.length;
    bool ends_block = (head.flags & H2O_HTTP2_FRAME_FLAG_END_HEADERS) != 0;

    if (guard->discarding_block) {
        if (head.type != H2O_HTTP2_FRAME_TYPE_CONTINUATION || head.stream_id != guard->block_stream_id) {
            *err_desc = "expected CONTINUATION frame";
            return H2O_HTTP2_ERROR_PROTOCOL;
        }
        if (++guard->block_frames > H2O_LIMITS_MAX_CONTINUATION_FRAMES) {
            *err_desc = "too many CONTINUATION frames";
            return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
        }
        guard->discarding_block = !ends_block;
        return frame_bytes;
    }

    int64_t bias = 0;
    if (conn->_headers_unparsed != NULL) {
        /* inside a header block: h2o itself refuses anything but a CONTINUATION */
        if (head.type == H2O_HTTP2_FRAME_TYPE_CONTINUATION) {
            if (++guard->block_frames > H2O_LIMITS_MAX_CONTINUATION_FRAMES) {
                *err_desc = "too many CONTINUATION frames";
                return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
            }
            if (head.length == 0 && !ends_block && idle_frame_over_limit(guard)) {
                *err_desc = "too many frames without effect";
                return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
            }
            if (conn->state >= H2O_HTTP2_CONN_STATE_HALF_CLOSED) {
                /* after GOAWAY h2o answers "0 bytes consumed" (413-414) and its parse loop spins on the
                 * frame forever: the block is ignored here instead, as h2o meant to */
                if (ends_block)
                    end_block_here(conn, guard);
                return frame_bytes;
            }
            if (conn->_headers_unparsed->size + head.length > H2O_MAX_REQLEN) {
                ssize_t ret = refuse_oversized_block(conn, guard, &head);
                if (ret != H2O_HTTP2_ERROR_INCOMPLETE)
                    return ret;
            } else if (ends_block && !guard->block_is_trailer) {
                bias = open_streams_bias(conn->num_streams.pull.open, guard->limits->max_streams);
            }
        }
    } else {
        switch (head.type) {
        case H2O_HTTP2_FRAME_TYPE_HEADERS: {
            h2o_http2_stream_t *stream = h2o_http2_conn_get_stream(conn, head.stream_id);
            guard->block_is_trailer = stream != NULL && stream->state == H2O_HTTP2_STREAM_STATE_RECV_BODY;
            guard->block_stream_id = head.stream_id;
            bool opens = !guard->block_is_trailer && (stream == NULL || stream->state == H2O_HTTP2_STREAM_STATE_IDLE) &&
                         head.stream_id > conn->pull_stream_ids.max_open;
            if (opens && ends_block)
                bias = open_streams_bias(conn->num_streams.pull.open + 1, guard->limits->max_streams);
            conn->num_streams.pull.open -= (uint32_t)bias;
            ssize_t ret = call_inner(conn, guard, src, len, err_desc);
            conn->num_streams.pull.open += (uint32_t)bias;
            if (ret < 0)
                return ret;
            if (opens) {
                /* our clock, not h2o's cached one: the request timeout runs from here */
                stream = h2o_http2_conn_get_stream(conn, head.stream_id);
                if (stream != NULL && (stream->state == H2O_HTTP2_STREAM_STATE_RECV_HEADERS ||
                                       stream->state == H2O_HTTP2_STREAM_STATE_RECV_BODY))
                    stream->req.timestamps.request_begin_at = h2o_limits_timeval_now();
            }
            if (ends_block && conn->state < H2O_HTTP2_CONN_STATE_HALF_CLOSED)
                on_block_complete(conn, guard, head.stream_id);
            if (!ends_block && conn->state >= H2O_HTTP2_CONN_STATE_HALF_CLOSED && conn->_headers_unparsed == NULL) {
                /* h2o ignores a new stream after its GOAWAY but not its CONTINUATION frames, which end
                 * the connection with PROTOCOL_ERROR and the responses still owed on it: drop them */
                guard->discarding_block = true;
                guard->block_frames = 0;
            }
            return ret;
        }
        case H2O_HTTP2_FRAME_TYPE_DATA:
            if (head.length == 0 && (head.flags & H2O_HTTP2_FRAME_FLAG_END_STREAM) == 0 && idle_frame_over_limit(guard)) {
                *err_desc = "too many frames without effect";
                return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
            }
            break;
        case H2O_HTTP2_FRAME_TYPE_PING:
        case H2O_HTTP2_FRAME_TYPE_SETTINGS:
            if ((head.flags & H2O_HTTP2_FRAME_FLAG_ACK) == 0 && idle_frame_over_limit(guard)) {
                *err_desc = "too many frames without effect";
                return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
            }
            break;
        default:
            if (head.type > H2O_HTTP2_FRAME_TYPE_CONTINUATION) {
                /* RFC 9113 4.1: ignore unknown types. h2o does, after one stderr line per frame (841). */
                if (idle_frame_over_limit(guard)) {
                    *err_desc = "too many frames without effect";
                    return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
                }
                return frame_bytes;
            }
            break;
        }
    }

    conn->num_streams.pull.open -= (uint32_t)bias;
    ssize_t ret = call_inner(conn, guard, src, len, err_desc);
    conn->num_streams.pull.open += (uint32_t)bias;
    if (ret > 0 && head.type == H2O_HTTP2_FRAME_TYPE_CONTINUATION && ends_block &&
        conn->state < H2O_HTTP2_CONN_STATE_HALF_CLOSED)
        on_block_complete(conn, guard, head.stream_id);
    return ret;
}
