/* holdconns: hold many keep-alive HTTP/1.1 connections to one server, from one source address.
 *
 *   holdconns --port P [--host 127.0.0.1] [--source 127.0.0.2] --connections N --duration S
 *             [--path /] [--idle]
 *
 * Active mode: every connection sends GET, waits for the whole response (Content-Length), sends
 * the next, until the duration ends. --idle: one request per connection, then hold them open until
 * the duration ends (to measure the server's memory per idle connection). Prints one JSON line:
 * {"connections":N,"connected":N,"responses":N,"errors":N,"seconds":S,"p50_ms":..,"p99_ms":..}.
 * wrk cannot choose a source address; on loopback each address has ~28k ephemeral ports, so going
 * past that takes several holdconns with different --source addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LATENCY_BUCKETS 10000 /* 0.1 ms each, up to 1 s */

struct conn {
    int fd;
    bool connected;
    bool waiting;        /* request sent, response not complete */
    uint64_t sent_ns;
    char buf[1024];
    size_t len;
};

struct options {
    const char *host, *source, *path;
    int port, connections;
    double duration_s;
    bool idle;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage_exit(const char *why)
{
    fprintf(stderr, "holdconns: %s\nusage: holdconns --port P [--host H] [--source ADDR] --connections N --duration S [--path /] [--idle]\n",
            why);
    exit(2);
}

static struct options parse(int argc, char **argv)
{
    struct options o = {.host = "127.0.0.1", .path = "/", .connections = 0, .duration_s = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--idle") == 0) {
            o.idle = true;
            continue;
        }
        if (v == NULL)
            usage_exit("missing value");
        if (strcmp(a, "--host") == 0) o.host = v;
        else if (strcmp(a, "--source") == 0) o.source = v;
        else if (strcmp(a, "--path") == 0) o.path = v;
        else if (strcmp(a, "--port") == 0) o.port = atoi(v);
        else if (strcmp(a, "--connections") == 0) o.connections = atoi(v);
        else if (strcmp(a, "--duration") == 0) o.duration_s = atof(v);
        else usage_exit("unknown option");
        i++;
    }
    if (o.port <= 0 || o.port > 65535 || o.connections <= 0 || o.duration_s <= 0)
        usage_exit("--port, --connections and --duration are required and positive");
    return o;
}

static int open_connection(const struct options *o, const struct sockaddr_in *to, int epoll_fd, struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return -1;
    int on = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (o->source != NULL) {
        struct sockaddr_in from = {.sin_family = AF_INET};
        inet_pton(AF_INET, o->source, &from.sin_addr);
        if (bind(c->fd, (struct sockaddr *)&from, sizeof(from)) != 0) {
            close(c->fd);
            c->fd = -1;
            return -1;
        }
    }
    if (connect(c->fd, (const struct sockaddr *)to, sizeof(*to)) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

/* Returns true when buf holds a whole response; consumes it. */
static bool take_response(struct conn *c)
{
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (end == NULL)
        return false;
    size_t head = (size_t)(end - c->buf) + 4, body = 0;
    char *cl = memmem(c->buf, head, "Content-Length:", 15);
    if (cl != NULL)
        body = (size_t)strtoul(cl + 15, NULL, 10);
    if (c->len < head + body)
        return false; /* bodies larger than the buffer are not supported: use the default body */
    memmove(c->buf, c->buf + head + body, c->len - head - body);
    c->len -= head + body;
    return true;
}

int main(int argc, char **argv)
{
    struct options o = parse(argc, argv);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    if (inet_pton(AF_INET, o.host, &to.sin_addr) != 1)
        usage_exit("--host must be a numeric IPv4 address");
    char request[512];
    int request_len = snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", o.path, o.host);

    int epoll_fd = epoll_create1(0);
    struct conn *conns = calloc((size_t)o.connections, sizeof(*conns));
    uint64_t *latency = calloc(LATENCY_BUCKETS + 1, sizeof(uint64_t));
    uint64_t responses = 0, errors = 0, connected = 0;
    for (int i = 0; i < o.connections; i++)
        if (open_connection(&o, &to, epoll_fd, &conns[i]) != 0)
            errors++;

    uint64_t start = now_ns(), deadline = start + (uint64_t)(o.duration_s * 1e9);
    struct epoll_event events[1024];
    while (now_ns() < deadline) {
        int timeout_ms = (int)((deadline - now_ns()) / 1000000) + 1;
        int n = epoll_wait(epoll_fd, events, 1024, timeout_ms > 100 ? 100 : timeout_ms);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                errors++;
                close(c->fd);
                c->fd = -1;
                continue;
            }
            if (!c->connected && (events[i].events & EPOLLOUT)) {
                c->connected = true;
                connected++;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
                if (write(c->fd, request, (size_t)request_len) != request_len) {
                    errors++;
                    continue;
                }
                c->waiting = true;
                c->sent_ns = now_ns();
            }
            if (events[i].events & EPOLLIN) {
                ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
                if (got <= 0) {
                    if (got == 0 || errno != EAGAIN) {
                        errors++;
                        close(c->fd);
                        c->fd = -1;
                    }
                    continue;
                }
                c->len += (size_t)got;
                while (c->waiting && take_response(c)) {
                    uint64_t ms10 = (now_ns() - c->sent_ns) / 100000;
                    latency[ms10 < LATENCY_BUCKETS ? ms10 : LATENCY_BUCKETS]++;
                    responses++;
                    c->waiting = false;
                    if (!o.idle) {
                        if (write(c->fd, request, (size_t)request_len) != request_len) {
                            errors++;
                            break;
                        }
                        c->waiting = true;
                        c->sent_ns = now_ns();
                    }
                }
                if (c->len == sizeof(c->buf)) /* a response we cannot frame: drop the buffer */
                    c->len = 0;
            }
        }
    }
    double seconds = (double)(now_ns() - start) / 1e9;
    double p50 = 0, p99 = 0;
    uint64_t seen = 0;
    for (int b = 0; b <= LATENCY_BUCKETS; b++) {
        seen += latency[b];
        if (p50 == 0 && seen * 2 >= responses && responses)
            p50 = (b + 1) / 10.0;
        if (p99 == 0 && seen * 100 >= responses * 99 && responses)
            p99 = (b + 1) / 10.0;
    }
    printf("{\"connections\":%d,\"connected\":%llu,\"responses\":%llu,\"errors\":%llu,\"seconds\":%.3f,\"p50_ms\":%.1f,\"p99_ms\":%.1f}\n",
           o.connections, (unsigned long long)connected, (unsigned long long)responses, (unsigned long long)errors, seconds, p50,
           p99);
    for (int i = 0; i < o.connections; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    free(conns);
    free(latency);
    return 0;
}
