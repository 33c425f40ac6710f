/* h2o_limits: bounds for the HTTP/2 connections libh2o serves, where h2o 2.2.5 keeps none itself.
 *
 * THESE FILES (h2o_limits.c, h2o_limits_frames.c, h2o_limits_conn.h) TOUCH h2o 2.2.5 INTERNALS:
 * <h2o/http2_internal.h> (made usable by server/khash.h), i.e. h2o_http2_conn_t, its streams and
 * `_`-prefixed fields and the context's connection list; and they wrap two libh2o functions by
 * symbol interposition, like h2o_glue.c. If libh2o is upgraded, re-check them with h2o_glue.c. Line numbers are those of tag v2.2.5, lib/http2/connection.c; Debian's build adds
 * upstream 743d6b6 (v2.2.6: reading stops while 512 KiB of output is unsent), which moves the lines
 * after 147 down by 6.
 *
 * What it guards, per worker:
 *  - --request-timeout on HTTP/2. h2o has only an idle timeout, and arms it only while no response is
 *    being produced (update_idle_timeout, 153-162). A sweep every H2O_LIMITS_SWEEP_MS sends GOAWAY
 *    ("request timeout") on a connection where a request (header block or body) has been incomplete
 *    for --request-timeout: h2o then finishes the responses it owes and closes. A connection whose
 *    pending response has made no progress for --request-timeout (flow-control window never opened,
 *    socket never read) is closed at once (RST if a write is stuck). Each is at most one sweep late.
 *  - Frames that do nothing. An unknown frame type is skipped here, without h2o's stderr line per
 *    frame (841). Unknown types, PING, SETTINGS, empty DATA and empty CONTINUATION frames beyond
 *    H2O_LIMITS_IDLE_FRAMES_PER_SECOND in a second end the connection with GOAWAY ENHANCE_YOUR_CALM,
 *    as does a header block of more than H2O_LIMITS_MAX_CONTINUATION_FRAMES CONTINUATION frames
 *    (empty ones count): h2o appended empty ones forever (422-425).
 *  - A header block larger than h2o buffers (H2O_MAX_REQLEN, 417,792 bytes) gets 431 on its stream
 *    and GOAWAY COMPRESSION_ERROR, instead of h2o's RST_STREAM REFUSED_STREAM (441-445: "not
 *    processed, retry") followed by GOAWAY PROTOCOL_ERROR at the next CONTINUATION (416-419).
 *  - Header blocks after h2o's GOAWAY (drain, or ours): h2o answers a CONTINUATION with "0 bytes
 *    consumed" (413-414) and parse_input (867-887) spins on it forever; it ignores a new stream's
 *    HEADERS (586-587) but fails the connection on its CONTINUATION, dropping responses it owes.
 *    Here both are consumed and ignored.
 *  - --http2-max-concurrent-streams. h2o advertises a fixed 100 (H2O_HTTP2_SETTINGS_HOST, 38-44,
 *    read-only data; the preface SETTINGS is a literal, 46-54, sent at 856-861). A second SETTINGS
 *    frame with the configured value is queued right behind it, in the same write; h2o accepts the
 *    extra SETTINGS ACK (681-685). The limit is enforced by steering h2o's own check
 *    (`num_streams.pull.open > H2O_HTTP2_SETTINGS_HOST.max_concurrent_streams`, 355): the count is
 *    offset for the one call that completes a request's header block and restored right after.
 *  - `Expect: 100-continue`: h2o buffers a body before the handler runs and never sends 100 on
 *    HTTP/2; it is sent here as soon as the header block is complete.
 *
 * How it hooks in: h2o parses input one frame at a time through the function pointer
 * conn->_read_expect (parse_input), which h2o switches between its preface, frame and CONTINUATION
 * parsers. Each HTTP/2 connection gets a wrapper in that slot that calls the parser h2o chose and
 * puts itself back whenever h2o switches. Connections are caught as h2o creates them: libh2o calls
 * h2o_http2_accept (after a TLS handshake choosing h2, after an h2c preface) and
 * h2o_http2_handle_upgrade (h2c Upgrade) through its PLT, so this file's definitions of both are
 * reached first and call libh2o's. Per-connection state hangs off the socket's on_close callback,
 * which it chains to and frees. */
#ifndef MOCKUPSTREAM_H2O_LIMITS_H
#define MOCKUPSTREAM_H2O_LIMITS_H

#include <ev.h>
#include <stddef.h>

#include <h2o.h>

#include "config.h"

#define H2O_LIMITS_SWEEP_MS 500
#define H2O_LIMITS_IDLE_FRAMES_PER_SECOND 10000
#define H2O_LIMITS_MAX_CONTINUATION_FRAMES 32

struct h2o_frontend;
struct h2o_limits;

/* Sets what h2o can be told through its configuration: requests run at once per connection (must
 * not be below the streams a client may open, or h2o queues the rest unanswered) and the TLS
 * handshake timeout (--request-timeout, like any unfinished request). Call on each global
 * configuration before h2o_context_init. */
void h2o_limits_configure(h2o_globalconf_t *conf, const struct config *cfg);

/* Starts guarding the HTTP/2 connections of `frontend`'s contexts (once per worker, after
 * h2o_frontend_init). Returns NULL with one line in err if libh2o is not the one this was written
 * for (its functions not reached through this program's) or memory ran out. */
struct h2o_limits *h2o_limits_start(struct ev_loop *loop, struct h2o_frontend *frontend, const struct config *cfg, char *err,
                                    size_t err_size);

/* Puts the guard on any connection the two entry points above did not see (only if memory ran out
 * there); cheap: looks at the newest connections only. Call before the worker runs h2o's queued work. */
void h2o_limits_before_block(struct h2o_limits *limits);

#endif
