/* fault_h2o: the HTTP/2 faults that h2o 2.2.5's public API cannot express (a stream reset without a
 * response, a GOAWAY on one connection).
 *
 * THIS FILE TOUCHES h2o 2.2.5 INTERNALS (h2o_http2_conn_t and h2o_http2_stream_t from
 * <h2o/http2_internal.h>, found through server/khash.h as h2o_limits.c does). If libh2o is upgraded,
 * re-check it with h2o_glue.c. Call these only from outside h2o's own frame processing (the delay
 * queue, or a zero timeout h2o runs), on a request h2o handed to the handler that has not started its
 * response: they dispose of the request, so the caller must not touch it (or its pool) afterwards. */
#ifndef MOCKUPSTREAM_FAULT_H2O_H
#define MOCKUPSTREAM_FAULT_H2O_H

#include <stdbool.h>

#include <h2o.h>

/* RST_STREAM (CANCEL) on this request's stream only, no response; the stream is closed. Returns false
 * (doing nothing) if req is not an HTTP/2 stream or its connection is already closing. */
bool fault_h2o_reset_stream(h2o_req_t *req);

/* GOAWAY (NO_ERROR, naming the last stream opened, with `debug` as its debug data) on the request's
 * connection, once: h2o takes no new stream and closes the connection once its streams are done.
 * With close_stream, this stream is closed without a response or RST_STREAM (the close fault); else
 * it is answered as usual (a connection limit). Returns false (doing nothing) if req is not an HTTP/2
 * stream or its connection is already closing. */
bool fault_h2o_goaway(h2o_req_t *req, const char *debug, bool close_stream);

/* The data of the on_close callback `cb` that the project put on the request's socket, or NULL: the
 * socket's own, or the one h2o_limits.c chained behind its per-connection guard (HTTP/2). */
void *fault_h2o_close_data(h2o_req_t *req, void (*cb)(void *data));

/* The client's streams opened on the request's connection so far, this one included (0 if req is not
 * an HTTP/2 stream): what --max-requests-per-connection counts. */
uint32_t fault_h2o_streams_opened(h2o_req_t *req);

#endif
