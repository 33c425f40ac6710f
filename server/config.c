#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpus.h"
#include "distribution.h"
#include "duration.h"
#include "fault.h"
#include "prng.h"
#include "stats.h"

_Static_assert(CONFIG_MAX_WORKERS == STATS_MAX_WORKERS, "every worker needs a stats slot");

#define DEFAULT_BODY "Hello world!\n"
#define DEFAULT_BODY_SIZE_TEXT "13" /* --help's default for --body-size: the length of DEFAULT_BODY */
_Static_assert(sizeof(DEFAULT_BODY) - 1 == 13, "DEFAULT_BODY_SIZE_TEXT must be the length of DEFAULT_BODY");
#define MAX_RESPONSE_BODY_BYTES (64ull * 1024 * 1024)
#define MAX_REQUEST_BODY_LIMIT_BYTES (1024ull * 1024 * 1024)

enum option_kind {
    OPT_DURATION,
    OPT_UINT,
    OPT_SIZE,
    OPT_LISTEN,
    OPT_PATH,
    OPT_FLAG,        /* command line only, no value (--help, --version) */
    OPT_BOOL,        /* --name alone; in the environment 1/0, true/false, yes/no, on/off */
    OPT_DELAY_FROM,  /* request | head */
    OPT_DIST_DELAY,  /* a duration, weighted list or distribution (distribution.h) */
    OPT_DIST_STATUS, /* a status code or weighted list */
    OPT_DIST_SIZE,   /* a size, weighted list or distribution */
    OPT_FAULT,       /* a fault kind or weighted list of kinds (fault.h) */
};

enum option_id {
    OPT_ID_LISTEN,
    OPT_ID_TLS_LISTEN,
    OPT_ID_TLS_CERT,
    OPT_ID_TLS_KEY,
    OPT_ID_STATS_LISTEN,
    OPT_ID_WORKERS,
    OPT_ID_DELAY,
    OPT_ID_MAX_DELAY,
    OPT_ID_BODY_FILE,
    OPT_ID_BODY_SIZE,
    OPT_ID_MAX_BODY_SIZE,
    OPT_ID_IDLE_TIMEOUT,
    OPT_ID_REQUEST_TIMEOUT,
    OPT_ID_DRAIN_TIMEOUT,
    OPT_ID_BACKLOG,
    OPT_ID_HTTP2_MAX_CONCURRENT_STREAMS,
    OPT_ID_STATUS,
    OPT_ID_MAX_RESPONSE_SIZE,
    OPT_ID_SEED,
    OPT_ID_SERVER_TIMING,
    OPT_ID_DELAY_FROM,
    OPT_ID_NO_REQUEST_CONTROL,
    OPT_ID_ALLOW_FAULTS,
    OPT_ID_FAULT,
    OPT_ID_MAX_REQUESTS_PER_CONNECTION,
    OPT_ID_MAX_CONNECTION_AGE,
    OPT_ID_DELAY_PER_HELD,
    OPT_ID_MAX_HELD,
    OPT_ID_HELP,
    OPT_ID_VERSION,
    OPT_ID_COUNT,
};

struct option_spec {
    const char *flag;     /* without the leading "--" */
    enum option_kind kind;
    const char *arg_name; /* for --help */
    const char *default_text;
    const char *help;
    uint64_t min, max; /* inclusive range for durations (ns), counts and sizes */
};

static const struct option_spec option_specs[OPT_ID_COUNT] = {
    [OPT_ID_LISTEN] = {"listen", OPT_LISTEN, "ADDR:PORT", CONFIG_DEFAULT_LISTEN,
                       "benchmark listener, HTTP/1.1 and HTTP/2 cleartext (repeatable; env: comma-separated)"},
    [OPT_ID_TLS_LISTEN] = {"tls-listen", OPT_LISTEN, "ADDR:PORT", "none",
                           "TLS listener, HTTP/2 or HTTP/1.1 by ALPN (repeatable; needs --tls-cert and --tls-key)"},
    [OPT_ID_TLS_CERT] = {"tls-cert", OPT_PATH, "FILE", "none", "PEM certificate chain for --tls-listen"},
    [OPT_ID_TLS_KEY] = {"tls-key", OPT_PATH, "FILE", "none", "PEM private key for --tls-listen"},
    [OPT_ID_STATS_LISTEN] = {"stats-listen", OPT_LISTEN, "ADDR:PORT", "none",
                             "extra listener serving only /stats, /metrics and /healthz (repeatable)"},
    [OPT_ID_WORKERS] = {"workers", OPT_UINT, "N", "CPUs this process may use (affinity, cgroup quota)", "worker processes", 1,
                       CONFIG_MAX_WORKERS},
    [OPT_ID_DELAY] = {"delay", OPT_DIST_DELAY, "SPEC", "10ms",
                      "delay before every response: a duration (us, ms, s; bare = ms), a weighted list (1ms:90,50ms:10) "
                      "or a distribution (uniform:, normal:, lognormal:, pareto:)"},
    [OPT_ID_MAX_DELAY] = {"max-delay", OPT_DURATION, "DURATION", "60s",
                          "largest delay a request may ask for; distributions are capped at it", 0, DURATION_MAX_NS},
    [OPT_ID_BODY_FILE] = {"body-file", OPT_PATH, "FILE", "none", "response body read from FILE (at most 64 MiB)"},
    [OPT_ID_BODY_SIZE] = {"body-size", OPT_DIST_SIZE, "SPEC", DEFAULT_BODY_SIZE_TEXT,
                          "response body size: bytes (k, m, g suffixes), a weighted list or a distribution"},
    [OPT_ID_MAX_BODY_SIZE] = {"max-body-size", OPT_SIZE, "BYTES", "1m", "largest request body accepted (larger: 413)", 0,
                              MAX_REQUEST_BODY_LIMIT_BYTES},
    [OPT_ID_IDLE_TIMEOUT] = {"idle-timeout", OPT_DURATION, "DURATION", "120s", "close keep-alive connections idle this long",
                             1000000ull, DURATION_MAX_NS},
    [OPT_ID_REQUEST_TIMEOUT] = {"request-timeout", OPT_DURATION, "DURATION", "10s",
                                "time a client may take to send a request, or to read a response, before it is closed",
                                1000000ull, DURATION_MAX_NS},
    [OPT_ID_DRAIN_TIMEOUT] = {"drain-timeout", OPT_DURATION, "DURATION", "5s",
                              "on SIGTERM, how long held requests may take before exit", 0, DURATION_MAX_NS},
    [OPT_ID_BACKLOG] = {"backlog", OPT_UINT, "N", "65535", "listen() backlog (the kernel caps it at net.core.somaxconn)", 1,
                        1u << 24},
    [OPT_ID_HTTP2_MAX_CONCURRENT_STREAMS] = {"http2-max-concurrent-streams", OPT_UINT, "N", "128",
                                             "HTTP/2 streams a client may have open at once per connection (SETTINGS)", 1,
                                             CONFIG_MAX_HTTP2_STREAMS},
    [OPT_ID_STATUS] = {"status", OPT_DIST_STATUS, "SPEC", "200",
                       "status of benchmark responses: a code 200-599 or a weighted list (200:99,503:1)"},
    [OPT_ID_MAX_RESPONSE_SIZE] = {"max-response-size", OPT_SIZE, "BYTES", "16m",
                                  "largest body size= or --body-size may ask for (13 bytes to 64m)", 13, MAX_RESPONSE_BODY_BYTES},
    [OPT_ID_SEED] = {"seed", OPT_UINT, "N", "random (printed at start-up)",
                     "seed of the per-worker random streams (worker k draws stream k): same seed, same draws", 0, UINT64_MAX},
    [OPT_ID_SERVER_TIMING] = {"server-timing", OPT_BOOL, NULL, "off",
                              "add Server-Timing: delay;dur=<applied ms> to benchmark responses"},
    [OPT_ID_DELAY_FROM] = {"delay-from", OPT_DELAY_FROM, "request|head", "request",
                           "start the delay when the whole request arrived, or when its head did"},
    [OPT_ID_NO_REQUEST_CONTROL] = {"no-request-control", OPT_BOOL, NULL, "off",
                                   "ignore /wait/, /delay/, /status/, delay=, status=, size=, fault=, dribble=, rate= and X-Mock-* in requests"},
    [OPT_ID_ALLOW_FAULTS] = {"allow-faults", OPT_BOOL, NULL, "off",
                             "honour fault= and X-Mock-Fault (else 403); needed by --fault"},
    [OPT_ID_FAULT] = {"fault", OPT_FAULT, "SPEC", "none",
                      "faults for every request: reset, close, hang, partial, garbage, weighted (reset:1,hang:0.5)"},
    [OPT_ID_MAX_REQUESTS_PER_CONNECTION] = {"max-requests-per-connection", OPT_UINT, "N", "unlimited",
                                            "Connection: close on a connection's Nth response (HTTP/2: GOAWAY with its Nth stream)",
                                            1, UINT32_MAX},
    [OPT_ID_MAX_CONNECTION_AGE] = {"max-connection-age", OPT_DURATION, "DURATION", "unlimited",
                                   "close a connection with its first response past this age, less up to 10 % (jitter)",
                                   1000000ull, 24ull * 86400 * 1000000000},
    [OPT_ID_DELAY_PER_HELD] = {"delay-per-held", OPT_DURATION, "DURATION", "0",
                               "add this to a benchmark request's delay per request the worker already holds (an overloaded upstream)",
                               0, 60ull * 1000000000},
    [OPT_ID_MAX_HELD] = {"max-held", OPT_UINT, "N", "unlimited",
                         "answer 503 with Retry-After: 1 at once to a request that would wait while the worker holds N", 1,
                         UINT32_MAX},
    [OPT_ID_HELP] = {"help", OPT_FLAG, NULL, NULL, "print this help and exit"},
    [OPT_ID_VERSION] = {"version", OPT_FLAG, NULL, NULL, "print versions of mockupstream, h2o, libev, jemalloc and exit"},
};

/* Where each option's value came from while loading; flags replace environment values. */
struct raw_values {
    const char *value[OPT_ID_COUNT];
    const char *source[OPT_ID_COUNT]; /* "--delay" or "MOCKUPSTREAM_DELAY", for error messages */
    char source_buf[OPT_ID_COUNT][64];
    /* repeatable listeners: all values for the option, from one source */
    const char *listens[OPT_ID_COUNT][CONFIG_MAX_LISTENERS];
    size_t listen_count[OPT_ID_COUNT];
};

static int fail(char *err, size_t err_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    /* values are quoted as given; a newline or other control byte in one must not break the promise
     * of a single line on stderr */
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return -1;
}

static void env_name_for(const char *flag, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "MOCKUPSTREAM_");
    for (const char *p = flag; *p && n + 1 < size; p++)
        buf[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    buf[n] = '\0';
}

static const char *env_lookup(char *const *envp, const char *name)
{
    size_t len = strlen(name);
    for (; envp != NULL && *envp != NULL; envp++)
        if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
            return *envp + len + 1;
    return NULL;
}

/* "ADDR:PORT", "[V6ADDR]:PORT" or "localhost:PORT"; numeric addresses only, so start-up never waits
 * on DNS. */
static int parse_listen(const char *text, struct config_listener *out, char *err, size_t err_size, const char *source)
{
    const char *colon = strrchr(text, ':');
    char host[64];
    const char *allowed = "allowed: ADDR:PORT with a numeric IPv4 address, [IPv6]:PORT or localhost:PORT, port 1-65535";
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host) || colon == text)
        return fail(err, err_size, "%s: '%s' is not an address (%s)", source, text, allowed);
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';

    const char *port_text = colon + 1;
    char *end;
    errno = 0;
    long port = strtol(port_text, &end, 10);
    if (*port_text == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535 || *port_text == '+' ||
        *port_text == '-' || *port_text == ' ')
        return fail(err, err_size, "%s: '%s' has no valid port (%s)", source, text, allowed);

    memset(&out->addr, 0, sizeof(out->addr));
    if (host[0] == '[') {
        size_t hlen = strlen(host);
        if (hlen < 3 || host[hlen - 1] != ']')
            return fail(err, err_size, "%s: '%s' is not an address (%s)", source, text, allowed);
        host[hlen - 1] = '\0';
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr;
        if (inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) != 1)
            return fail(err, err_size, "%s: '%s' is not an IPv6 address (%s)", source, text, allowed);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        out->addr_len = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr;
        const char *numeric = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
        if (inet_pton(AF_INET, numeric, &sin->sin_addr) != 1)
            return fail(err, err_size, "%s: '%s' is not an address (%s)", source, text, allowed);
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        out->addr_len = sizeof(*sin);
    }
    snprintf(out->text, sizeof(out->text), "%s", text);
    return 0;
}

static int read_whole_file(const char *path, char **out, size_t *out_len, char *err, size_t err_size, const char *source)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, err_size, "%s: cannot read '%s': %s (allowed: a readable file of at most 64 MiB)", source, path,
                    strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_RESPONSE_BODY_BYTES) {
        close(fd);
        return fail(err, err_size, "%s: '%s' is not a regular file of at most 64 MiB", source, path);
    }
    char *data = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (data != NULL && got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (data == NULL || got != (size_t)st.st_size) {
        free(data);
        return fail(err, err_size, "%s: cannot read '%s'", source, path);
    }
    *out = data;
    *out_len = got;
    return 0;
}

/* Records one value for option `id` from `source`. Repeatable listener options collect values. */
static int raw_set(struct raw_values *raw, enum option_id id, const char *value, const char *source, char *err,
                   size_t err_size)
{
    if (option_specs[id].kind == OPT_LISTEN) {
        if (raw->listen_count[id] == CONFIG_MAX_LISTENERS)
            return fail(err, err_size, "%s: too many listeners (allowed: at most %d)", source, CONFIG_MAX_LISTENERS);
        raw->listens[id][raw->listen_count[id]++] = value;
    }
    raw->value[id] = value;
    snprintf(raw->source_buf[id], sizeof(raw->source_buf[id]), "%s", source);
    raw->source[id] = raw->source_buf[id];
    return 0;
}

/* Edit distance between two short names (for "did you mean"), capped at 64 characters each. */
static size_t name_distance(const char *a, const char *b)
{
    size_t la = strlen(a) < 64 ? strlen(a) : 64, lb = strlen(b) < 64 ? strlen(b) : 64;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

/* A mistyped variable would otherwise be silently ignored while a mistyped flag is refused: every
 * MOCKUPSTREAM_* variable must name an option. */
static int check_unknown_environment(char *const *envp, char *err, size_t err_size)
{
    for (; envp != NULL && *envp != NULL; envp++) {
        if (strncmp(*envp, "MOCKUPSTREAM_", 13) != 0)
            continue;
        const char *eq = strchr(*envp, '=');
        char given[64];
        snprintf(given, sizeof(given), "%.*s", eq ? (int)(eq - *envp) : (int)strlen(*envp), *envp);
        const char *closest = NULL;
        size_t closest_distance = SIZE_MAX;
        bool known = false;
        for (int id = 0; id < OPT_ID_COUNT && !known; id++) {
            if (option_specs[id].kind == OPT_FLAG)
                continue;
            char name[64];
            env_name_for(option_specs[id].flag, name, sizeof(name));
            known = strcmp(name, given) == 0;
            size_t d = name_distance(name, given);
            if (d < closest_distance) {
                closest_distance = d;
                closest = option_specs[id].flag;
            }
        }
        if (!known) {
            char closest_name[64];
            env_name_for(closest, closest_name, sizeof(closest_name));
            return fail(err, err_size, "unknown environment variable %s (did you mean %s? see --help for the allowed variables)",
                        given, closest_name);
        }
    }
    return 0;
}

static int load_environment(struct raw_values *raw, char *const *envp, char **env_copies, char *err, size_t err_size)
{
    for (int id = 0; id < OPT_ID_COUNT; id++) {
        if (option_specs[id].kind == OPT_FLAG)
            continue;
        char name[64];
        env_name_for(option_specs[id].flag, name, sizeof(name));
        const char *value = env_lookup(envp, name);
        if (value == NULL)
            continue;
        if (option_specs[id].kind != OPT_LISTEN) {
            raw_set(raw, (enum option_id)id, value, name, err, err_size);
            continue;
        }
        /* listeners in the environment: comma-separated, split into a private copy */
        char *copy = strdup(value);
        if (copy == NULL)
            return fail(err, err_size, "out of memory");
        env_copies[id] = copy;
        char *save = NULL;
        for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save))
            if (raw_set(raw, (enum option_id)id, item, name, err, err_size) != 0)
                return -1;
        if (raw->listen_count[id] == 0)
            return fail(err, err_size, "%s: '%s' names no address (allowed: ADDR:PORT[,ADDR:PORT...])", name, value);
    }
    return 0;
}

static int load_arguments(struct raw_values *raw, int argc, char **argv, bool *flag_seen, char *err, size_t err_size)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0) { /* the one short flag every user tries first */
            raw->value[OPT_ID_HELP] = "1";
            continue;
        }
        if (strncmp(arg, "--", 2) != 0)
            return fail(err, err_size, "unexpected argument '%s' (flags start with --; see --help)", arg);
        const char *name = arg + 2, *inline_value = strchr(name, '=');
        size_t name_len = inline_value ? (size_t)(inline_value - name) : strlen(name);
        int id = -1;
        for (int k = 0; k < OPT_ID_COUNT; k++)
            if (strlen(option_specs[k].flag) == name_len && strncmp(option_specs[k].flag, name, name_len) == 0)
                id = k;
        if (id < 0)
            return fail(err, err_size, "unknown flag '%s' (see --help for the allowed flags)", arg);
        char source[64];
        snprintf(source, sizeof(source), "--%s", option_specs[id].flag);
        if (option_specs[id].kind == OPT_FLAG || option_specs[id].kind == OPT_BOOL) {
            if (inline_value != NULL)
                return fail(err, err_size, "%s takes no value (got '%s')", source, inline_value + 1);
            raw_set(raw, (enum option_id)id, "1", source, err, err_size);
            continue;
        }
        const char *value = inline_value ? inline_value + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (value == NULL)
            return fail(err, err_size, "%s needs a value (%s)", source, option_specs[id].arg_name);
        /* the first flag for a listener option replaces what the environment said */
        if (option_specs[id].kind == OPT_LISTEN && !flag_seen[id])
            raw->listen_count[id] = 0;
        flag_seen[id] = true;
        if (raw_set(raw, (enum option_id)id, value, source, err, err_size) != 0)
            return -1;
    }
    return 0;
}

/* Converts `v` (a value of option `id`, from `source`) within the option's range. */
static int convert_number_text(enum option_id id, const char *v, const char *source, uint64_t *out, char *err, size_t err_size)
{
    const struct option_spec *spec = &option_specs[id];
    char min_text[32], max_text[32];
    int ok = 0;
    uint64_t n = 0;
    switch (spec->kind) {
    case OPT_DURATION:
        ok = duration_parse_ns(v, strlen(v), &n) == 0 && n >= spec->min && n <= spec->max;
        if (!ok)
            return fail(err, err_size, "%s: '%s' is not a duration from %s to %s (allowed: e.g. 10ms, 250us, 1.5s; bare numbers are ms)",
                        source, v, duration_format(spec->min, min_text, sizeof(min_text)),
                        duration_format(spec->max, max_text, sizeof(max_text)));
        break;
    case OPT_SIZE:
        ok = size_parse_bytes(v, strlen(v), spec->max, &n) == 0 && n >= spec->min;
        if (!ok)
            return fail(err, err_size, "%s: '%s' is not a size from %llu to %llu bytes (allowed: digits with optional k, m, g or KiB, MiB, GiB)",
                        source, v, (unsigned long long)spec->min, (unsigned long long)spec->max);
        break;
    case OPT_UINT:
        ok = size_parse_bytes(v, strlen(v), spec->max, &n) == 0 && n >= spec->min && strspn(v, "0123456789") == strlen(v);
        if (!ok)
            return fail(err, err_size, "%s: '%s' is not a whole number from %llu to %llu", source, v,
                        (unsigned long long)spec->min, (unsigned long long)spec->max);
        break;
    default:
        return fail(err, err_size, "internal: option %s is not numeric", spec->flag);
    }
    *out = n;
    return 0;
}

static int convert_number(const struct raw_values *raw, enum option_id id, uint64_t *out, char *err, size_t err_size)
{
    return convert_number_text(id, raw->value[id], raw->source[id], out, err, err_size);
}

static int apply_listeners(struct config *cfg, const struct raw_values *raw, char *err, size_t err_size)
{
    static const struct {
        enum option_id id;
        enum listener_kind kind;
    } listener_options[] = {
        {OPT_ID_LISTEN, LISTENER_HTTP},
        {OPT_ID_TLS_LISTEN, LISTENER_TLS},
        {OPT_ID_STATS_LISTEN, LISTENER_STATS},
    };
    for (size_t k = 0; k < sizeof(listener_options) / sizeof(listener_options[0]); k++) {
        enum option_id id = listener_options[k].id;
        size_t count = raw->listen_count[id];
        const char *default_listen = CONFIG_DEFAULT_LISTEN;
        if (id == OPT_ID_LISTEN && count == 0)
            count = 1; /* the default */
        for (size_t i = 0; i < count; i++) {
            if (cfg->listener_count == CONFIG_MAX_LISTENERS)
                return fail(err, err_size, "too many listeners (allowed: at most %d in all)", CONFIG_MAX_LISTENERS);
            struct config_listener *l = &cfg->listeners[cfg->listener_count];
            const char *text = raw->listen_count[id] ? raw->listens[id][i] : default_listen;
            const char *source = raw->listen_count[id] ? raw->source[id] : "default --listen";
            if (parse_listen(text, l, err, err_size, source) != 0)
                return -1;
            l->kind = listener_options[k].kind;
            for (size_t j = 0; j < cfg->listener_count; j++)
                if (cfg->listeners[j].addr_len == l->addr_len && memcmp(&cfg->listeners[j].addr, &l->addr, l->addr_len) == 0)
                    return fail(err, err_size, "%s: '%s' is given twice (allowed: each address once)", source, text);
            cfg->listener_count++;
        }
    }
    return 0;
}

static int apply_tls(struct config *cfg, const struct raw_values *raw, char *err, size_t err_size)
{
    bool want_tls = raw->listen_count[OPT_ID_TLS_LISTEN] != 0;
    static const enum option_id files[] = {OPT_ID_TLS_CERT, OPT_ID_TLS_KEY};
    for (size_t i = 0; i < 2; i++) {
        enum option_id id = files[i];
        if (!want_tls) {
            if (raw->value[id] != NULL)
                return fail(err, err_size, "%s is set but --tls-listen is not (allowed: TLS files only with --tls-listen)",
                            raw->source[id]);
            continue;
        }
        if (raw->value[id] == NULL || raw->value[id][0] == '\0')
            return fail(err, err_size, "--tls-listen needs --%s FILE (a readable PEM file)", option_specs[id].flag);
        if (access(raw->value[id], R_OK) != 0)
            return fail(err, err_size, "%s: cannot read '%s': %s (allowed: a readable PEM file)", raw->source[id],
                        raw->value[id], strerror(errno));
    }
    if (want_tls) {
        cfg->tls_cert_path = strdup(raw->value[OPT_ID_TLS_CERT]);
        cfg->tls_key_path = strdup(raw->value[OPT_ID_TLS_KEY]);
        if (cfg->tls_cert_path == NULL || cfg->tls_key_path == NULL)
            return fail(err, err_size, "out of memory");
    }
    return 0;
}

/* The value of option `id` as given, else its default text; *source says which. */
static const char *value_or_default(const struct raw_values *raw, enum option_id id, const char **source)
{
    *source = raw->value[id] != NULL ? raw->source[id] : "default";
    return raw->value[id] != NULL ? raw->value[id] : option_specs[id].default_text;
}

/* Parses a distribution option (--delay, --status, --body-size) with values up to `max`. */
static int convert_distribution(const struct raw_values *raw, enum option_id id, enum distribution_unit unit, uint64_t max,
                                struct distribution *out, char *err, size_t err_size)
{
    const char *source, *v = value_or_default(raw, id, &source);
    char why[DISTRIBUTION_ERROR_BYTES];
    if (distribution_parse(out, unit, v, strlen(v), max, why, sizeof(why)) != 0)
        return fail(err, err_size, "%s: '%s': %s%s", source, v, why,
                    strstr(why, "maximum") == NULL ? ""
                    : unit == DISTRIBUTION_NS ? " [limit: --max-delay]" : unit == DISTRIBUTION_BYTES ? " [limit: --max-response-size]" : "");
    return 0;
}

/* On/off options: the flag alone on the command line; in the environment a word. */
static int convert_bool(const struct raw_values *raw, enum option_id id, bool *out, char *err, size_t err_size)
{
    const char *v = raw->value[id];
    *out = false;
    if (v == NULL)
        return 0;
    static const char *const on[] = {"1", "true", "yes", "on"}, *const off[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++)
        if (strcasecmp(v, on[i]) == 0)
            return (*out = true), 0;
    for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++)
        if (strcasecmp(v, off[i]) == 0)
            return 0;
    return fail(err, err_size, "%s: '%s' is not on or off (allowed: 1, true, yes, on, 0, false, no, off)", raw->source[id], v);
}

static int apply_behaviours(struct config *cfg, const struct raw_values *raw, char *err, size_t err_size)
{
    if (convert_distribution(raw, OPT_ID_DELAY, DISTRIBUTION_NS, cfg->max_delay_ns, &cfg->delay, err, err_size) != 0 ||
        convert_distribution(raw, OPT_ID_STATUS, DISTRIBUTION_STATUS, 599, &cfg->status, err, err_size) != 0 ||
        convert_bool(raw, OPT_ID_SERVER_TIMING, &cfg->server_timing, err, err_size) != 0)
        return -1;
    bool no_control = false;
    if (convert_bool(raw, OPT_ID_NO_REQUEST_CONTROL, &no_control, err, err_size) != 0)
        return -1;
    cfg->request_control = !no_control;
    if (convert_bool(raw, OPT_ID_ALLOW_FAULTS, &cfg->allow_faults, err, err_size) != 0)
        return -1;
    if (raw->value[OPT_ID_FAULT] != NULL) {
        char why[FAULT_ERROR_BYTES];
        const char *v = raw->value[OPT_ID_FAULT];
        if (!cfg->allow_faults)
            return fail(err, err_size, "%s is set but --allow-faults is not (allowed: faults only with --allow-faults)",
                        raw->source[OPT_ID_FAULT]);
        if (fault_spec_parse(&cfg->fault, v, strlen(v), why, sizeof(why)) != 0)
            return fail(err, err_size, "%s: '%s': %s", raw->source[OPT_ID_FAULT], v, why);
    }
    /* a weighted list's rest gets the option's default (10ms, 200): what it would be without the flag */
    cfg->status_is_fixed = distribution_is_fixed(&cfg->status, &cfg->status_code);
    if (!cfg->status_is_fixed)
        cfg->status_code = strtoull(option_specs[OPT_ID_STATUS].default_text, NULL, 10);
    cfg->delay_is_fixed = distribution_is_fixed(&cfg->delay, &cfg->delay_ns);
    if (!cfg->delay_is_fixed && convert_number_text(OPT_ID_MAX_DELAY, option_specs[OPT_ID_DELAY].default_text, "default",
                                                    &cfg->delay_ns, err, err_size) != 0)
        return -1;

    const char *source, *from = value_or_default(raw, OPT_ID_DELAY_FROM, &source);
    if (strcmp(from, "request") != 0 && strcmp(from, "head") != 0)
        return fail(err, err_size, "%s: '%s' is not a starting point (allowed: request, head)", source, from);
    cfg->delay_from_head = strcmp(from, "head") == 0;

    if (raw->value[OPT_ID_SEED] != NULL) {
        if (convert_number(raw, OPT_ID_SEED, &cfg->seed, err, err_size) != 0)
            return -1;
        snprintf(cfg->seed_source, sizeof(cfg->seed_source), "%s", raw->source[OPT_ID_SEED]);
    } else {
        if (prng_os_seed(&cfg->seed) != 0)
            return fail(err, err_size, "cannot read a random seed: %s (give one with --seed N)", strerror(errno));
        snprintf(cfg->seed_source, sizeof(cfg->seed_source), "random");
    }
    return 0;
}

static int apply_body(struct config *cfg, const struct raw_values *raw, char *err, size_t err_size)
{
    if (raw->value[OPT_ID_BODY_FILE] != NULL && raw->value[OPT_ID_BODY_SIZE] != NULL)
        return fail(err, err_size, "%s and %s both set (allowed: one of them)", raw->source[OPT_ID_BODY_FILE],
                    raw->source[OPT_ID_BODY_SIZE]);
    if (convert_distribution(raw, OPT_ID_BODY_SIZE, DISTRIBUTION_BYTES, cfg->max_response_bytes, &cfg->body_size, err,
                             err_size) != 0)
        return -1;
    if (raw->value[OPT_ID_BODY_FILE] != NULL) {
        if (read_whole_file(raw->value[OPT_ID_BODY_FILE], &cfg->body, &cfg->body_bytes, err, err_size,
                            raw->source[OPT_ID_BODY_FILE]) != 0)
            return -1;
        distribution_set_fixed(&cfg->body_size, DISTRIBUTION_BYTES, cfg->body_bytes, MAX_RESPONSE_BODY_BYTES);
        cfg->body_size_is_fixed = true;
        return 0;
    }
    /* a distribution of sizes serves slices of the shared fill (the body repeated); the configured
     * body is then the default text */
    uint64_t size = strlen(DEFAULT_BODY);
    cfg->body_size_is_fixed = distribution_is_fixed(&cfg->body_size, &size);
    if (!cfg->body_size_is_fixed)
        size = strlen(DEFAULT_BODY);
    /* a sized body repeats the default text, so it stays readable in a terminal */
    cfg->body = malloc(size + 1);
    if (cfg->body == NULL)
        return fail(err, err_size, "out of memory for a %llu-byte body", (unsigned long long)size);
    for (uint64_t i = 0; i < size; i++)
        cfg->body[i] = DEFAULT_BODY[i % strlen(DEFAULT_BODY)];
    cfg->body[size] = '\0';
    cfg->body_bytes = size;
    return 0;
}

enum config_result config_load(struct config *cfg, int argc, char **argv, char *const *envp, char *err, size_t err_size)
{
    struct raw_values raw;
    bool flag_seen[OPT_ID_COUNT] = {false};
    char *env_copies[OPT_ID_COUNT] = {NULL};
    enum config_result result = CONFIG_ERROR;
    uint64_t n;

    memset(&raw, 0, sizeof(raw));
    memset(cfg, 0, sizeof(*cfg));
    err[0] = '\0';

    if (load_environment(&raw, envp, env_copies, err, err_size) != 0 ||
        load_arguments(&raw, argc, argv, flag_seen, err, err_size) != 0)
        goto done;
    if (raw.value[OPT_ID_HELP] != NULL) {
        result = CONFIG_SHOW_HELP;
        goto done;
    }
    if (raw.value[OPT_ID_VERSION] != NULL) {
        result = CONFIG_SHOW_VERSION;
        goto done;
    }
    /* after --help and --version, which answer whatever the environment holds */
    if (check_unknown_environment(envp, err, err_size) != 0)
        goto done;

    /* numeric options: the value given, else the default as --help prints it (written once, in
     * option_specs); --workers has no fixed default (see below) */
    static const enum option_id numeric_options[] = {
        OPT_ID_MAX_RESPONSE_SIZE, OPT_ID_MAX_DELAY,     OPT_ID_IDLE_TIMEOUT, OPT_ID_DRAIN_TIMEOUT,
        OPT_ID_REQUEST_TIMEOUT, OPT_ID_MAX_BODY_SIZE, OPT_ID_BACKLOG,    OPT_ID_HTTP2_MAX_CONCURRENT_STREAMS,
        OPT_ID_DELAY_PER_HELD,
    };
    uint64_t values[OPT_ID_COUNT] = {0};
    for (size_t i = 0; i < sizeof(numeric_options) / sizeof(numeric_options[0]); i++) {
        enum option_id id = numeric_options[i];
        bool given = raw.value[id] != NULL;
        if (convert_number_text(id, given ? raw.value[id] : option_specs[id].default_text, given ? raw.source[id] : "default",
                                &values[id], err, err_size) != 0)
            goto done;
    }
    if (raw.value[OPT_ID_WORKERS] != NULL && convert_number(&raw, OPT_ID_WORKERS, &values[OPT_ID_WORKERS], err, err_size) != 0)
        goto done;
    cfg->max_delay_ns = values[OPT_ID_MAX_DELAY];
    cfg->idle_timeout_ns = values[OPT_ID_IDLE_TIMEOUT];
    cfg->request_timeout_ns = values[OPT_ID_REQUEST_TIMEOUT];
    cfg->drain_timeout_ns = values[OPT_ID_DRAIN_TIMEOUT];
    cfg->max_body_bytes = values[OPT_ID_MAX_BODY_SIZE];
    cfg->backlog = (int)values[OPT_ID_BACKLOG];
    cfg->max_response_bytes = values[OPT_ID_MAX_RESPONSE_SIZE];
    cfg->http2_max_concurrent_streams = (uint32_t)values[OPT_ID_HTTP2_MAX_CONCURRENT_STREAMS];
    if (apply_behaviours(cfg, &raw, err, err_size) != 0)
        goto done;
    /* limits whose default is "unlimited" (0 here): parsed only when given; "unlimited" may be written */
    static const enum option_id unlimited_by_default[] = {OPT_ID_MAX_REQUESTS_PER_CONNECTION, OPT_ID_MAX_CONNECTION_AGE,
                                                          OPT_ID_MAX_HELD};
    for (size_t i = 0; i < sizeof(unlimited_by_default) / sizeof(unlimited_by_default[0]); i++) {
        enum option_id id = unlimited_by_default[i];
        if (raw.value[id] != NULL && strcmp(raw.value[id], option_specs[id].default_text) != 0 &&
            convert_number(&raw, id, &values[id], err, err_size) != 0)
            goto done;
    }
    cfg->max_requests_per_connection = (uint32_t)values[OPT_ID_MAX_REQUESTS_PER_CONNECTION];
    cfg->max_connection_age_ns = values[OPT_ID_MAX_CONNECTION_AGE];
    cfg->delay_per_held_ns = values[OPT_ID_DELAY_PER_HELD];
    cfg->max_held = (uint32_t)values[OPT_ID_MAX_HELD];

    n = values[OPT_ID_WORKERS];
    if (raw.value[OPT_ID_WORKERS] == NULL) {
        struct cpus_budget budget;
        cpus_budget_read(&budget);
        n = budget.count > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : budget.count;
        snprintf(cfg->workers_source, sizeof(cfg->workers_source), "%s", budget.source);
    } else {
        snprintf(cfg->workers_source, sizeof(cfg->workers_source), "%s", raw.source[OPT_ID_WORKERS]);
    }
    cfg->workers = (unsigned)n;

    if (apply_listeners(cfg, &raw, err, err_size) != 0 || apply_tls(cfg, &raw, err, err_size) != 0 ||
        apply_body(cfg, &raw, err, err_size) != 0)
        goto done;
    result = CONFIG_OK;

done:
    for (int i = 0; i < OPT_ID_COUNT; i++)
        free(env_copies[i]);
    if (result == CONFIG_ERROR)
        config_free(cfg);
    return result;
}

void config_free(struct config *cfg)
{
    free(cfg->tls_cert_path);
    free(cfg->tls_key_path);
    free(cfg->body);
    cfg->tls_cert_path = cfg->tls_key_path = cfg->body = NULL;
}

void config_print_help(FILE *out)
{
    fprintf(out, "usage: mockupstream [flags]\n\n"
                 "An HTTP/1.1 + HTTP/2 server that answers every request after an exact delay, for benchmarking\n"
                 "HTTP clients. Every flag can also be set by the environment variable shown; a flag wins.\n\n");
    for (int id = 0; id < OPT_ID_COUNT; id++) {
        const struct option_spec *spec = &option_specs[id];
        char flag[64], env[64];
        snprintf(flag, sizeof(flag), "--%s%s%s", spec->flag, spec->arg_name ? " " : "", spec->arg_name ? spec->arg_name : "");
        fprintf(out, "  %-26s %s\n", flag, spec->help);
        if (spec->kind != OPT_FLAG) {
            env_name_for(spec->flag, env, sizeof(env));
            fprintf(out, "  %-26s env %s, default %s\n", "", env, spec->default_text);
        }
    }
    fprintf(out, "\nPaths: any path answers after --delay with --status and --body-size; per request, /wait/<ms>,\n"
                 "/delay/<duration>, /status/<code>, ?delay=, ?status=, ?size= and X-Mock-Delay, X-Mock-Status,\n"
                 "X-Mock-Size choose instead (values, weighted lists like 1ms:90,50ms:10, or distributions like\n"
                 "lognormal:p50=5ms,p99=20ms). ?dribble=<parts>/<duration> or ?rate=<bytes/s> (X-Mock-Dribble,\n"
                 "X-Mock-Rate) send the body in parts over time. /stats (JSON), /metrics (Prometheus) and /healthz\n"
                 "answer at once.\n");
}
