#include "fault_h2o.h"

#include <string.h>

#include <h2o/http2.h>
#include <h2o/http2_internal.h>

#include "h2o_limits_conn.h" /* struct conn_guard: h2o_limits.c chains the socket's on_close */

/* The request belongs to an open HTTP/2 stream that has not sent its HEADERS yet. */
static h2o_http2_stream_t *stream_of(h2o_req_t *req, h2o_http2_conn_t **conn)
{
    if (req->version < 0x200)
        return NULL;
    *conn = (h2o_http2_conn_t *)req->conn;
    if ((*conn)->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING)
        return NULL;
    h2o_http2_stream_t *stream = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
    return stream->state == H2O_HTTP2_STREAM_STATE_SEND_HEADERS ? stream : NULL;
}

bool fault_h2o_reset_stream(h2o_req_t *req)
{
    h2o_http2_conn_t *conn;
    h2o_http2_stream_t *stream = stream_of(req, &conn);
    if (stream == NULL)
        return false;
    /* what h2o does for a stream error of its own (stream_send_error), then what it does when the
     * client resets a stream (handle_rst_stream_frame): the stream is closed and the request disposed */
    h2o_http2_encode_rst_stream_frame(&conn->_write.buf, stream->stream_id, -H2O_HTTP2_ERROR_CANCEL);
    h2o_http2_conn_request_write(conn);
    h2o_http2_stream_reset(conn, stream);
    return true;
}

bool fault_h2o_goaway(h2o_req_t *req, const char *debug, bool close_stream)
{
    h2o_http2_conn_t *conn;
    h2o_http2_stream_t *stream = stream_of(req, &conn);
    if (stream == NULL)
        return false;
    /* one GOAWAY: a connection already HALF_CLOSED (an earlier GOAWAY, a drain) has announced its
     * last stream, and closes when its last stream is done */
    if (conn->state < H2O_HTTP2_CONN_STATE_HALF_CLOSED)
        h2o_limits_send_goaway(conn, H2O_HTTP2_ERROR_NONE, debug);
    if (close_stream)
        h2o_http2_stream_reset(conn, stream);
    return true;
}

void *fault_h2o_close_data(h2o_req_t *req, void (*cb)(void *data))
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (sock == NULL)
        return NULL;
    if (sock->on_close.cb == cb)
        return sock->on_close.data;
    /* h2o_limits.c hangs its guard on the socket's on_close of every HTTP/2 connection and calls the
     * callback it replaced when the socket closes */
    const struct conn_guard *guard = req->version >= 0x200 ? h2o_limits_guard_of((h2o_http2_conn_t *)req->conn) : NULL;
    return guard != NULL && guard->chained_close_cb == cb ? guard->chained_close_data : NULL;
}

uint32_t fault_h2o_streams_opened(h2o_req_t *req)
{
    if (req->version < 0x200)
        return 0;
    /* client streams are odd: 1, 3, 5 ... (h2o 2.2.5 refuses a client's even or reused ids) */
    h2o_http2_stream_t *stream = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
    return (stream->stream_id + 1) / 2;
}
