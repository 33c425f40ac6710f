/* listener_kind: what a listener serves. Its own header because configuration (which listeners),
 * the protocol paths (what to serve on them) and stats (connections counted by them) all name it,
 * and none of them should need the others for it. */
#ifndef MOCKUPSTREAM_LISTENER_KIND_H
#define MOCKUPSTREAM_LISTENER_KIND_H

enum listener_kind {
    LISTENER_HTTP,  /* benchmark, cleartext: HTTP/1.1 and h2c */
    LISTENER_TLS,   /* benchmark, TLS: HTTP/1.1 or HTTP/2 by ALPN */
    LISTENER_STATS, /* /stats, /metrics and /healthz only */
    LISTENER_KIND_COUNT,
};

#endif
