/* config: the command line and MOCKUPSTREAM_* environment, validated once at start-up.
 *
 * Every flag can also come from the environment variable MOCKUPSTREAM_<FLAG> (upper case, '-' as
 * '_'); a flag given on the command line wins. After config_load() succeeds the request path can
 * trust every field: ranges are checked, files are read, addresses are resolved. */
#ifndef MOCKUPSTREAM_CONFIG_H
#define MOCKUPSTREAM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "distribution.h"
#include "fault.h"
#include "listener_kind.h"

#define CONFIG_MAX_LISTENERS 16
#define CONFIG_MAX_WORKERS 1024 /* the stats segment has a slot for each (STATS_MAX_WORKERS) */
#define CONFIG_DEFAULT_LISTEN "0.0.0.0:8080"
/* 16,384 streams of a 10 ms delay is 1.6 M requests/s on one connection: more than a worker serves */
#define CONFIG_MAX_HTTP2_STREAMS 16384

struct config_listener {
    enum listener_kind kind; /* what it serves: benchmark (cleartext or TLS) or control paths only */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char text[64]; /* as given, for logs and the banner */
};

struct config {
    struct config_listener listeners[CONFIG_MAX_LISTENERS];
    size_t listener_count;
    char *tls_cert_path; /* NULL without --tls-listen */
    char *tls_key_path;
    unsigned workers;
    char workers_source[112]; /* "--workers", "MOCKUPSTREAM_WORKERS" or where the default came from */
    struct distribution delay;  /* --delay, in ns (a lone value, a weighted list or a distribution) */
    bool delay_is_fixed;        /* every draw is delay_ns: nothing to draw per request */
    uint64_t delay_ns;          /* the fixed delay, else what a weighted list's rest gets (the default) */
    uint64_t max_delay_ns;
    struct distribution status; /* --status: 200-599 */
    bool status_is_fixed;       /* every draw is status_code */
    uint64_t status_code;       /* the fixed status, else what a weighted list's rest gets (200) */
    struct distribution body_size; /* --body-size, in bytes */
    bool body_size_is_fixed;    /* every response carries `body` as it is */
    uint64_t max_response_bytes; /* largest body size= or --body-size may ask for */
    uint64_t seed;              /* of the per-worker random streams */
    char seed_source[32];       /* "--seed", "MOCKUPSTREAM_SEED" or "random" */
    bool server_timing;         /* Server-Timing: delay;dur= on benchmark responses */
    bool delay_from_head;       /* delays run from the request head's arrival, not the whole request's */
    bool request_control;       /* /wait/, /delay/, /status/, query and X-Mock-* controls honoured */
    bool allow_faults;          /* fault= and X-Mock-Fault honoured (else 403); --fault needs it */
    struct fault_spec fault;    /* --fault: every request's faults (count 0: none) */
    uint32_t max_requests_per_connection; /* Connection: close / GOAWAY with the Nth response; 0: unlimited */
    uint64_t max_connection_age_ns;       /* close a connection at its first response past this age; 0: unlimited */
    uint64_t delay_per_held_ns;           /* added to a benchmark delay per request the worker holds; 0: none */
    uint32_t max_held;                    /* a request that would wait while the worker holds this many: 503; 0: unlimited */
    uint64_t idle_timeout_ns;
    uint64_t request_timeout_ns; /* to send a request (head and body), or to read a response */
    uint64_t drain_timeout_ns;
    uint64_t max_body_bytes; /* request bodies above this get 413 */
    char *body;              /* the response body, owned */
    size_t body_bytes;
    int backlog;
    uint32_t http2_max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS, enforced */
};

enum config_result {
    CONFIG_OK = 0,
    CONFIG_ERROR = -1,       /* err holds one line naming the value and what is allowed */
    CONFIG_SHOW_HELP = 1,    /* --help */
    CONFIG_SHOW_VERSION = 2, /* --version */
};

/* Fills *cfg from argv and envp (a NULL-terminated "NAME=value" array, usually `environ`). */
enum config_result config_load(struct config *cfg, int argc, char **argv, char *const *envp, char *err, size_t err_size);

/* Releases what config_load allocated. */
void config_free(struct config *cfg);

/* Prints --help text: every flag, its variable, default and meaning. */
void config_print_help(FILE *out);

#endif
