/* handler: what to answer, independent of the protocol that carries the request.
 *
 * Both protocol paths (h2o for HTTP/2, the lean HTTP/1.1 loop for cleartext and TLS) parse a request, call
 * handler_route() with its method and path, and then carry out the answer it describes: wait
 * `delay_ns` (benchmark requests only) and send `status`, `content_type` and the body. Keeping the
 * routing here means both paths answer every path, method and error the same way.
 *
 * The request-target a protocol path hands over is origin-form ("/p?q", raw as received) or "*"
 * (OPTIONS only); HTTP/1 reduces an absolute-form target to origin-form in its parser (http1_parse.h).
 * Anything else (an empty or absolute HTTP/2 :path, "*" with another method) gets 400, CONNECT 501.
 * The path (not the query) is percent-decoded here, once for every protocol, before it is matched
 * against /wait/<ms>, /stats, /metrics and /healthz: a malformed escape or %00 gets 400. Every
 * escape decodes, %2F included ("/wait%2F5" is "/wait/5", as nginx treats it); the query is matched
 * raw. */
#ifndef MOCKUPSTREAM_HANDLER_H
#define MOCKUPSTREAM_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "stats.h"
#include "strbuf.h"

struct handler_context {
    const struct config *config;
    const struct stats_segment *stats;
};

/* Longest decoded path prefix the router looks at: longer than any route ("/wait/" and 12 digits),
 * so a path cut to it can match none by mistake. A stack buffer in handler_route. */
#define HANDLER_ROUTE_PATH_MAX_BYTES 64

struct handler_request {
    const char *method;
    size_t method_len;
    const char *path; /* request target in origin-form (or "*"), with query, not yet percent-decoded */
    size_t path_len;
    enum stats_listener listener; /* STATS_LISTENER_STATS serves control paths only */
};

struct handler_response {
    int status;
    const char *reason;
    bool is_control;       /* /stats, /metrics, /healthz, or an error about them: never delayed, counted apart */
    bool is_head;          /* send headers only (Content-Length still that of the body) */
    uint64_t delay_ns;     /* how long to hold a benchmark response */
    const char *content_type;
    const char *allow;     /* value of an Allow header for 405, else NULL */
    const char *body;      /* points into config (benchmark body) or `rendered`; valid until release */
    size_t body_len;
    struct strbuf rendered; /* owned storage for rendered documents and error texts */
};

/* Decides the answer to one request. Never fails: bad requests get a 4xx description. */
void handler_route(const struct handler_context *ctx, const struct handler_request *req, struct handler_response *res);

/* Frees what handler_route rendered. The response must not be used afterwards. */
void handler_response_release(struct handler_response *res);

/* The reason phrase for a status code this server sends. */
const char *handler_reason_phrase(int status);

#endif
