/* holdconns: hold many keep-alive HTTP/1.1 connections to one server, from one source address.
 *
 *   holdconns --port P [--host 127.0.0.1] [--source 127.0.0.2] --connections N --duration S
 *             [--path /] [--idle]
 *
 * Active mode: every connection sends GET, waits for the whole response (Content-Length or chunked,
 * so nginx's echo module can be measured too), sends the next, until the duration ends.
 * --idle: one request per connection, then hold them open until the duration ends (to measure the
 * server's memory per idle connection); the moment every connection has its response (or failed)
 * it writes "ready" on stderr, so a caller knows when the server is idle. Prints one JSON line:
 *   {"connections":N,"connected":N,"responses":N,"errors":N,"unanswered":N,"seconds":S,
 *    "p50_ms":..,"p99_ms":..,"max_ms":..}
 * "errors" counts failed connects, resets, closes by the server, non-2xx responses and responses
 * that could not be framed; "unanswered" counts requests still in flight when the duration ended.
 * wrk cannot choose a source address; on loopback each source address has ~28k ephemeral ports
 * (32768-60999), so going past that takes several holdconns with different --source addresses.
 * The process exits by itself when the duration ends; SIGTERM or SIGINT end it early, and it still
 * prints its JSON line (tools/bench stops it that way once it has measured the server). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LATENCY_BUCKET_US 100   /* histogram resolution: 0.1 ms */
#define LATENCY_BUCKETS 100000  /* 0.1 ms each, up to 10 s; slower ones land in the last bucket */
#define CONNECTS_PER_ROUND 500  /* paced so the listen queue (somaxconn, often 4096) does not overflow */
#define RESPONSE_BUF_BYTES 2048 /* the default body is 13 bytes; larger responses count as errors */

struct conn {
    int fd;             /* -1 once closed */
    bool connected;
    bool waiting;       /* request sent, response not complete */
    uint64_t sent_ns;
    size_t len;
    char buf[RESPONSE_BUF_BYTES];
};

struct options {
    const char *host, *source, *path;
    int port, connections;
    double duration_s;
    bool idle;
};

struct totals {
    uint64_t connected, responses, errors, max_latency_us;
    uint64_t latency[LATENCY_BUCKETS + 1];
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage_exit(const char *why, const char *value)
{
    fprintf(stderr, "holdconns: %s%s%s (usage: holdconns --port P [--host IPV4] [--source IPV4] --connections N --duration S "
            "[--path /] [--idle])\n", why, value ? ": " : "", value ? value : "");
    exit(2);
}

static long parse_long(const char *flag, const char *v, long min, long max)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
        usage_exit(flag, v);
    return n;
}

static struct options parse(int argc, char **argv)
{
    struct options o = {.host = "127.0.0.1", .path = "/"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--idle") == 0) {
            o.idle = true;
            continue;
        }
        if (v == NULL)
            usage_exit("missing value for", a);
        if (strcmp(a, "--host") == 0) o.host = v;
        else if (strcmp(a, "--source") == 0) o.source = v;
        else if (strcmp(a, "--path") == 0) o.path = v;
        else if (strcmp(a, "--port") == 0) o.port = (int)parse_long("--port must be 1..65535", v, 1, 65535);
        else if (strcmp(a, "--connections") == 0) o.connections = (int)parse_long("--connections must be 1..1000000", v, 1, 1000000);
        else if (strcmp(a, "--duration") == 0) {
            char *end;
            o.duration_s = strtod(v, &end);
            if (end == v || *end != '\0' || !(o.duration_s > 0 && o.duration_s <= 3600))
                usage_exit("--duration must be seconds in (0, 3600]", v);
        } else
            usage_exit("unknown option", a);
        i++;
    }
    if (o.port == 0 || o.connections == 0 || o.duration_s == 0)
        usage_exit("--port, --connections and --duration are required", NULL);
    return o;
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    c->fd = -1;
}

/* Returns 0 when the connect is under way, -1 on failure (counted by the caller). */
static int conn_open(struct conn *c, const struct sockaddr_in *to, const struct sockaddr_in *from, int epoll_fd)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return -1;
    int on = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    /* pick the source port at connect(), per destination: otherwise bind() needs a port free for
     * every destination, and ports left in TIME_WAIT by an earlier run to another server run out */
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof(on));
    if ((from != NULL && bind(c->fd, (const struct sockaddr *)from, sizeof(*from)) != 0) ||
        (connect(c->fd, (const struct sockaddr *)to, sizeof(*to)) != 0 && errno != EINPROGRESS)) {
        conn_close(c);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

/* The value of header `name` inside the head [p, end), or NULL. Header names are case-insensitive. */
static const char *header_value(const char *p, const char *end, const char *name)
{
    size_t name_len = strlen(name);
    for (const char *line = memchr(p, '\n', (size_t)(end - p)); line != NULL && line + 1 < end;
         line = memchr(line + 1, '\n', (size_t)(end - line - 1))) {
        const char *h = line + 1;
        if ((size_t)(end - h) > name_len && strncasecmp(h, name, name_len) == 0 && h[name_len] == ':') {
            h += name_len + 1;
            while (h < end && (*h == ' ' || *h == '\t'))
                h++;
            return h;
        }
    }
    return NULL;
}

/* Size of a chunked body starting at p (chunks, then the empty last chunk, no trailers): bytes
 * consumed, -2 when incomplete, -1 when malformed. */
static long chunked_size(const char *p, size_t len)
{
    size_t at = 0;
    for (;;) {
        const char *eol = memmem(p + at, len - at, "\r\n", 2);
        if (eol == NULL)
            return -2;
        char *end;
        unsigned long chunk = strtoul(p + at, &end, 16);
        if (end == p + at || chunk > RESPONSE_BUF_BYTES)
            return -1;
        at = (size_t)(eol - p) + 2;
        if (chunk == 0)
            return len - at >= 2 ? (long)(at + 2) : -2; /* the final CRLF */
        if (len - at < chunk + 2)
            return -2;
        at += chunk + 2;
    }
}

/* Frames one response at the start of c->buf: 1 and consumes it (status in *status), 0 when
 * incomplete, -1 when it cannot be framed. */
static int conn_take_response(struct conn *c, int *status)
{
    char *head_end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (head_end == NULL)
        return c->len == sizeof(c->buf) ? -1 : 0;
    size_t head = (size_t)(head_end - c->buf) + 4;
    long body = 0;
    if (c->len < 12 || memcmp(c->buf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(c->buf + 9);
    const char *te = header_value(c->buf, head_end + 2, "Transfer-Encoding");
    const char *cl = header_value(c->buf, head_end + 2, "Content-Length");
    if (te != NULL && strncasecmp(te, "chunked", 7) == 0) {
        body = chunked_size(c->buf + head, c->len - head);
        if (body < 0)
            return body == -2 && c->len < sizeof(c->buf) ? 0 : -1;
    } else if (cl != NULL) {
        body = strtol(cl, NULL, 10);
        if (body < 0 || head + (size_t)body > sizeof(c->buf))
            return -1;
        if (c->len < head + (size_t)body)
            return 0;
    }
    memmove(c->buf, c->buf + head + body, c->len - head - (size_t)body);
    c->len -= head + (size_t)body;
    return 1;
}

static int conn_send(struct conn *c, const char *request, size_t request_len)
{
    /* a ~40-byte request always fits an empty socket buffer: a short write is an error */
    if (write(c->fd, request, request_len) != (ssize_t)request_len)
        return -1;
    c->waiting = true;
    c->sent_ns = now_ns();
    return 0;
}

static void record_latency(struct totals *t, uint64_t latency_us)
{
    uint64_t b = latency_us / LATENCY_BUCKET_US;
    t->latency[b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS]++;
    if (latency_us > t->max_latency_us)
        t->max_latency_us = latency_us;
}

/* Upper edge (ms) of the histogram bucket holding quantile q. */
static double latency_quantile_ms(const struct totals *t, double q)
{
    if (t->responses == 0)
        return 0;
    uint64_t seen = 0, rank = (uint64_t)(q * (double)t->responses);
    for (int b = 0; b <= LATENCY_BUCKETS; b++) {
        seen += t->latency[b];
        if (seen > rank || seen == t->responses)
            return (b + 1) * LATENCY_BUCKET_US / 1000.0;
    }
    return 0;
}

/* Reads what arrived on c and answers every complete response; errors close the connection. */
static void conn_readable(struct conn *c, const struct options *o, struct totals *t, const char *request, size_t request_len)
{
    for (;;) {
        ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (got <= 0) { /* closed by the server (idle timeout, drain) or reset */
            t->errors++;
            conn_close(c);
            return;
        }
        c->len += (size_t)got;
        int status = 0, framed;
        while ((framed = conn_take_response(c, &status)) == 1) {
            if (!c->waiting || status < 200 || status > 299) {
                t->errors++; /* a response nobody asked for, or not a success */
            } else {
                t->responses++;
                record_latency(t, (now_ns() - c->sent_ns) / 1000);
            }
            c->waiting = false;
            if (!o->idle && conn_send(c, request, request_len) != 0) {
                t->errors++;
                conn_close(c);
                return;
            }
        }
        if (framed < 0) {
            t->errors++;
            conn_close(c);
            return;
        }
    }
}

int main(int argc, char **argv)
{
    struct options o = parse(argc, argv);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)o.connections + 16 > rl.rlim_cur) {
            fprintf(stderr, "holdconns: --connections %d exceeds the open-file limit %llu: run several holdconns\n", o.connections,
                    (unsigned long long)rl.rlim_cur);
            return 2;
        }
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    struct sockaddr_in from = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, o.host, &to.sin_addr) != 1)
        usage_exit("--host must be a numeric IPv4 address", o.host);
    if (o.source != NULL && inet_pton(AF_INET, o.source, &from.sin_addr) != 1)
        usage_exit("--source must be a numeric IPv4 address", o.source);
    char request[512];
    int request_len = snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", o.path, o.host, o.port);
    if (request_len < 0 || (size_t)request_len >= sizeof(request))
        usage_exit("--path is too long", o.path);

    int epoll_fd = epoll_create1(0);
    struct conn *conns = calloc((size_t)o.connections, sizeof(*conns));
    struct totals *t = calloc(1, sizeof(*t));
    if (epoll_fd < 0 || conns == NULL || t == NULL) {
        perror("holdconns");
        return 1;
    }
    uint64_t start = now_ns(), deadline = start + (uint64_t)(o.duration_s * 1e9);
    int opened = 0;
    bool ready_told = false;
    struct epoll_event events[1024];
    struct sigaction sa = {.sa_handler = on_stop_signal}; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    for (uint64_t now = start; now < deadline && !stop_requested; now = now_ns()) {
        for (int i = 0; i < CONNECTS_PER_ROUND && opened < o.connections; i++, opened++)
            if (conn_open(&conns[opened], &to, o.source ? &from : NULL, epoll_fd) != 0)
                t->errors++;
        int wait_ms = (int)((deadline - now) / 1000000) + 1;
        if (opened < o.connections)
            wait_ms = 1; /* keep connecting */
        int n = epoll_wait(epoll_fd, events, 1024, wait_ms < 100 ? wait_ms : 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->fd < 0)
                continue;
            int so_error = 0;
            socklen_t so_error_len = sizeof(so_error);
            if (!c->connected && (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so_error, &so_error_len) != 0 || so_error != 0)) {
                t->errors++; /* refused or timed out: the connect failed */
                conn_close(c);
                continue;
            }
            if ((events[i].events & (EPOLLERR | EPOLLHUP)) && !(events[i].events & EPOLLIN)) {
                t->errors++; /* reset with nothing left to read */
                conn_close(c);
                continue;
            }
            if (!c->connected && (events[i].events & EPOLLOUT)) {
                c->connected = true;
                t->connected++;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
                if (conn_send(c, request, (size_t)request_len) != 0) {
                    t->errors++;
                    conn_close(c);
                    continue;
                }
            }
            if (events[i].events & EPOLLIN)
                conn_readable(c, &o, t, request, (size_t)request_len);
        }
        if (o.idle && !ready_told && opened == o.connections && t->responses + t->errors >= (uint64_t)o.connections) {
            fprintf(stderr, "ready\n");
            fflush(stderr);
            ready_told = true;
        }
    }
    double seconds = (double)(now_ns() - start) / 1e9;
    uint64_t unanswered = 0;
    for (int i = 0; i < opened; i++)
        if (conns[i].fd >= 0) {
            unanswered += conns[i].waiting;
            close(conns[i].fd);
        }
    printf("{\"connections\":%d,\"connected\":%llu,\"responses\":%llu,\"errors\":%llu,\"unanswered\":%llu,\"seconds\":%.3f,"
           "\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f}\n",
           o.connections, (unsigned long long)t->connected, (unsigned long long)t->responses, (unsigned long long)t->errors,
           (unsigned long long)unanswered, seconds, latency_quantile_ms(t, 0.50), latency_quantile_ms(t, 0.99),
           t->max_latency_us / 1000.0);
    free(conns);
    free(t);
    return 0;
}
