/* Unit tests for server/http1_parse.c: what is accepted, what is refused with which status, and
 * that every strict prefix of a valid request is "incomplete". */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http1_parse.h"
#include "unit.h"

static int parse(const char *s, struct http1_request *req, int *status)
{
    *status = 0;
    return http1_request_parse(s, strlen(s), req, status);
}

static void test_valid_requests(void)
{
    struct http1_request r;
    int st;
    const char *get = "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(parse(get, &r, &st) == (int)strlen(get));
    CHECK(r.method_len == 3 && memcmp(r.method, "GET", 3) == 0 && r.path_len == 6 && memcmp(r.path, "/a?b=c", 6) == 0);
    CHECK(r.keep_alive && r.body_kind == HTTP1_BODY_NONE && r.minor_version == 1);
    CHECK(r.authority_len == 1 && r.authority[0] == 'x');
    CHECK(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &r, &st) > 0);
    CHECK(r.body_kind == HTTP1_BODY_LENGTH && r.content_length == 5);
    CHECK(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", &r, &st) > 0 && r.body_kind == HTTP1_BODY_CHUNKED);
    /* OWS around a value (a tab included) is not part of it */
    CHECK(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked \r\n\r\n", &r, &st) > 0 && r.body_kind == HTTP1_BODY_CHUNKED);
    CHECK(parse("HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r, &st) > 0 && !r.keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\n\r\n", &r, &st) > 0 && !r.keep_alive && r.authority == NULL);
    CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r, &st) > 0 && r.keep_alive);
    CHECK(parse("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", &r, &st) > 0 && r.expect_continue);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", &r, &st) > 0 && !r.expect_continue); /* no body */
    CHECK(parse("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", &r, &st) > 0); /* one empty line first (RFC 9112 2.2) */
}

/* The request-target forms of RFC 9112 3.2, and what reaches the router (req.path). */
static void test_request_target_forms(void)
{
    static const struct {
        const char *line; /* request line; "Host: h" is added */
        const char *path; /* expected req.path, or NULL if refused */
        const char *authority;
        int status;
    } cases[] = {
        {"GET /p?q=1 HTTP/1.1", "/p?q=1", "h", 0},
        /* absolute-form: routed by its path; its authority replaces Host (3.2.2) */
        {"GET http://127.0.0.1/wait/300 HTTP/1.1", "/wait/300", "127.0.0.1", 0},
        {"GET https://example.com:8443/healthz?x=1 HTTP/1.1", "/healthz?x=1", "example.com:8443", 0},
        {"GET HTTP://EXAMPLE.com/a HTTP/1.1", "/a", "EXAMPLE.com", 0}, /* the scheme is case-insensitive */
        {"GET http://[::1]:8080/a HTTP/1.1", "/a", "[::1]:8080", 0},
        {"GET http://x HTTP/1.1", "/", "x", 0},          /* empty path means "/" */
        {"GET http://x?format=json HTTP/1.1", "/", "x", 0}, /* ... and its query cannot matter to "/" */
        {"GET http://x/a%2Fb HTTP/1.0", "/a%2Fb", "x", 0},
        {"GET http://user@x/ HTTP/1.1", NULL, NULL, 400},   /* userinfo (RFC 9110 4.2.4) */
        {"GET http://user:pw@x/ HTTP/1.1", NULL, NULL, 400},
        {"GET http:///p HTTP/1.1", NULL, NULL, 400},        /* empty host (RFC 9110 4.2.1) */
        {"GET http://:80/p HTTP/1.1", NULL, NULL, 400},
        {"GET http://x:8o/p HTTP/1.1", NULL, NULL, 400},
        {"GET http://x/%zz HTTP/1.1", NULL, NULL, 400},
        {"GET ftp://x/p HTTP/1.1", NULL, NULL, 400},
        {"GET http:/x/p HTTP/1.1", NULL, NULL, 400},
        {"GET x/p HTTP/1.1", NULL, NULL, 400},
        /* asterisk-form: OPTIONS only (3.2.4) */
        {"OPTIONS * HTTP/1.1", "*", "h", 0},
        {"GET * HTTP/1.1", NULL, NULL, 400},
        {"options * HTTP/1.1", NULL, NULL, 400}, /* methods are case-sensitive */
        {"OPTIONS *?x HTTP/1.1", NULL, NULL, 400},
        /* authority-form is CONNECT's (3.2.3), and CONNECT is refused whatever its target */
        {"CONNECT example.com:443 HTTP/1.1", NULL, NULL, 501},
        {"CONNECT / HTTP/1.1", NULL, NULL, 501},
        {"CONNECT http://x/ HTTP/1.1", NULL, NULL, 501},
        {"GET example.com:443 HTTP/1.1", NULL, NULL, 400},
        /* percent escapes in the path: well-formed or refused; %00 refused; the query is not checked */
        {"GET /wai%74/300 HTTP/1.1", "/wai%74/300", "h", 0},
        {"GET /a%2f%2F HTTP/1.1", "/a%2f%2F", "h", 0},
        {"GET /?q=100% HTTP/1.1", "/?q=100%", "h", 0},
        {"GET /a?%zz HTTP/1.1", "/a?%zz", "h", 0},
        {"GET /% HTTP/1.1", NULL, NULL, 400},
        {"GET /a% HTTP/1.1", NULL, NULL, 400},   /* escape cut by the end of the target */
        {"GET /a%4 HTTP/1.1", NULL, NULL, 400},
        {"GET /a%4?x HTTP/1.1", NULL, NULL, 400}, /* ... or by the query */
        {"GET /%zz HTTP/1.1", NULL, NULL, 400},
        {"GET /%g1 HTTP/1.1", NULL, NULL, 400},
        {"GET /%00 HTTP/1.1", NULL, NULL, 400},
        {"GET /a%00b HTTP/1.1", NULL, NULL, 400},
        {"GET /%0 HTTP/1.1", NULL, NULL, 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "%s\r\nHost: h\r\n\r\n", cases[i].line);
        struct http1_request r;
        int st;
        int head = parse(text, &r, &st);
        bool ok = cases[i].path ? head == (int)strlen(text) && r.path_len == strlen(cases[i].path) &&
                                      memcmp(r.path, cases[i].path, r.path_len) == 0 &&
                                      r.authority_len == strlen(cases[i].authority) &&
                                      memcmp(r.authority, cases[i].authority, r.authority_len) == 0
                                : head == -1 && st == cases[i].status;
        CHECK(ok);
        if (!ok)
            printf("  case %zu (%s): head %d status %d\n", i, cases[i].line, head, st);
    }
}

/* RFC 9112 3.2: Host is required on HTTP/1.1, once, and must be host[:port]. */
static void test_host(void)
{
    static const struct {
        const char *value;
        bool valid;
    } hosts[] = {
        {"x", true}, {"example.com", true}, {"example.com:8080", true}, {"127.0.0.1:80", true}, {"[::1]", true},
        {"[::1]:8080", true}, {"[v1.fe80::a+en1]", true}, {"", true}, {"x:", true}, {"a%41b", true}, {"a_b~c!$&'()*+,;=", true},
        {"a b", false}, {"a\tb", false}, {"user@x", false}, {":80", false}, {"[::1", false}, {"[]", false},
        {"[::1]x", false}, {"[::1]:", true}, {"x:80a", false}, {"x:80:90", false}, {"a/b", false}, {"a?b", false},
        {"\xc3\xa9", false}, {"a%4", false}, {"a%zz", false}, {"[a b]", false}, {"x,y", true},
    };
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", hosts[i].value);
        struct http1_request r;
        int st;
        int head = parse(text, &r, &st);
        bool ok = hosts[i].valid ? head > 0 && r.authority_len == strlen(hosts[i].value) : head == -1 && st == 400;
        CHECK(ok);
        if (!ok)
            printf("  Host %zu \"%s\": head %d status %d\n", i, hosts[i].value, head, st);
    }
    struct http1_request r;
    int st;
    CHECK(parse("GET / HTTP/1.1\r\n\r\n", &r, &st) == -1 && st == 400);
    CHECK(parse("GET http://x/ HTTP/1.1\r\n\r\n", &r, &st) == -1 && st == 400); /* absolute-form does not excuse it */
    CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", &r, &st) == -1 && st == 400);
    CHECK(parse("GET / HTTP/1.1\r\nhost: a\r\nHOST: b\r\n\r\n", &r, &st) == -1 && st == 400);
    CHECK(parse("GET http://a:1/ HTTP/1.1\r\nHost: a b\r\n\r\n", &r, &st) == -1 && st == 400);
    CHECK(parse("GET http://a:1/ HTTP/1.1\r\nHost: b\r\n\r\n", &r, &st) > 0 && r.authority_len == 3 &&
          memcmp(r.authority, "a:1", 3) == 0);
    CHECK(parse("GET / HTTP/1.1\r\nHost:  x \r\n\r\n", &r, &st) > 0 && r.authority_len == 1 && r.authority[0] == 'x');
    /* HTTP/1.0 had no Host: served without one, but one that is there is checked */
    CHECK(parse("GET / HTTP/1.0\r\n\r\n", &r, &st) > 0);
    CHECK(parse("GET / HTTP/1.0\r\nHost: a b\r\n\r\n", &r, &st) == -1 && st == 400);
    CHECK(parse("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", &r, &st) == -1 && st == 400);
}

static void test_upgrade_detection(void)
{
    struct http1_request r;
    int st;
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\n\r\n", &r, &st) > 0);
    CHECK(r.upgrade_h2c);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\n\r\n", &r, &st) > 0 && !r.upgrade_h2c);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", &r, &st) > 0 && !r.upgrade_h2c);
    /* an upgrade without Host is no request at all: refused, not handed to HTTP/2 */
    CHECK(parse("GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\n\r\n", &r, &st) == -1 && st == 400);
    CHECK(http1_looks_like_h2_preface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24));
    CHECK(http1_looks_like_h2_preface("PRI * HT", 8));
    CHECK(!http1_looks_like_h2_preface("GET / HT", 8));
}

static void test_refusals(void)
{
    static const struct {
        const char *text;
        int status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", 417},
        /* obs-fold, and header lines starting with whitespace (a "TE with a leading space/tab") */
        {"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\n\tTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n", 400},
        {"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET nopath HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400},
        {"GET / http/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/1.1 x\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http1_request r;
        int st;
        CHECK(parse(cases[i].text, &r, &st) == -1);
        CHECK(st == cases[i].status);
        if (st != cases[i].status)
            printf("  case %zu: status %d\n", i, st);
    }
}

static void test_too_large(void)
{
    struct http1_request r;
    int st;
    size_t n = HTTP1_MAX_HEAD_BYTES + 100;
    char *big = malloc(n + 1);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memset(big + 19, 'a', n - 19);
    big[n] = '\0';
    CHECK(http1_request_parse(big, n, &r, &st) == -1 && st == 431);
    /* a 70 KB header, complete */
    char *header70k = malloc(72 * 1024);
    int len = sprintf(header70k, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(header70k + len, 'b', 70 * 1024);
    strcpy(header70k + len + 70 * 1024, "\r\n\r\n");
    CHECK(parse(header70k, &r, &st) == -1 && st == 431);
    free(header70k);
    /* 100 header lines are accepted, 101 are not */
    char many[8192] = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (int i = 1; i < HTTP1_MAX_HEADERS; i++)
        sprintf(many + strlen(many), "X-%d: y\r\n", i);
    strcat(many, "\r\n");
    CHECK(parse(many, &r, &st) > 0);
    strcpy(many + strlen(many) - 2, "X-last: y\r\n\r\n");
    CHECK(parse(many, &r, &st) == -1 && st == 431);
    for (int i = 0; i < 50; i++)
        sprintf(many + strlen(many), "X-more-%d: y\r\n", i);
    CHECK(parse(many, &r, &st) == -1 && st == 431);
    free(big);
}

/* A request line of HTTP1_MAX_REQUEST_LINE_BYTES is served; one byte more is 414, complete or not. */
static void test_request_line_limit(void)
{
    struct http1_request r;
    int st;
    const size_t line = HTTP1_MAX_REQUEST_LINE_BYTES;
    size_t target_len = line - strlen("GET  HTTP/1.1");
    char *buf = malloc(line + 64);
    for (int extra = 0; extra <= 1; extra++) {
        size_t t = target_len + (size_t)extra;
        buf[0] = '\0';
        strcpy(buf, "GET /");
        memset(buf + 5, 'a', t - 1);
        strcpy(buf + 4 + t, " HTTP/1.1\r\nHost: x\r\n\r\n");
        int head = parse(buf, &r, &st);
        CHECK(extra == 0 ? head > 0 && r.path_len == t : head == -1 && st == 414);
        /* LF alone ends the line too */
        strcpy(buf + 4 + t, " HTTP/1.1\nHost: x\n\n");
        head = parse(buf, &r, &st);
        CHECK(extra == 0 ? head > 0 : head == -1 && st == 414);
        /* after the empty line a client may send first */
        memmove(buf + 2, buf, strlen(buf) + 1);
        memcpy(buf, "\r\n", 2);
        head = parse(buf, &r, &st);
        CHECK(extra == 0 ? head > 0 : head == -1 && st == 414);
    }
    /* incomplete: 414 as soon as the line is known to be too long, not before */
    memset(buf, 'a', line + 2);
    memcpy(buf, "GET /", 5);
    CHECK(http1_request_parse(buf, line, &r, &st) == -2);
    CHECK(http1_request_parse(buf, line + 1, &r, &st) == -1 && st == 414);
    CHECK(http1_request_parse(buf, line + 2, &r, &st) == -1 && st == 414);
    /* a line of exactly the limit and its CR: the LF may still come */
    memcpy(buf + line - strlen(" HTTP/1.1"), " HTTP/1.1\r", strlen(" HTTP/1.1\r"));
    CHECK(http1_request_parse(buf, line + 1, &r, &st) == -2);
    memcpy(buf + line - strlen(" HTTP/1.1"), "aaaaaaaaaa", strlen(" HTTP/1.1\r"));
    /* the 414 comes first even when the line is also malformed */
    memcpy(buf, "G@T /", 5);
    CHECK(http1_request_parse(buf, line + 2, &r, &st) == -1 && st == 414);
    free(buf);
    /* a long header is 431, not 414: only the request line counts */
    char *hdr = malloc(HTTP1_MAX_REQUEST_LINE_BYTES * 2);
    int n = sprintf(hdr, "GET / HTTP/1.1\r\nHost: x\r\nX: ");
    memset(hdr + n, 'c', HTTP1_MAX_REQUEST_LINE_BYTES + 10);
    strcpy(hdr + n + HTTP1_MAX_REQUEST_LINE_BYTES + 10, "\r\n\r\n");
    CHECK(parse(hdr, &r, &st) > 0);
    free(hdr);
}

static void test_every_prefix_is_incomplete(void)
{
    const char *req = "POST /path?q=1 HTTP/1.1\r\nHost: example\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n";
    size_t len = strlen(req);
    int incomplete = 0;
    for (size_t n = 0; n < len; n++) {
        /* each prefix in its own allocation, so ASan catches any read past it */
        char *copy = malloc(n ? n : 1);
        memcpy(copy, req, n);
        struct http1_request r;
        int st;
        incomplete += http1_request_parse(copy, n, &r, &st) == -2;
        free(copy);
    }
    CHECK(incomplete == (int)len);
}

int main(void)
{
    RUN(test_valid_requests);
    RUN(test_request_target_forms);
    RUN(test_host);
    RUN(test_upgrade_detection);
    RUN(test_refusals);
    RUN(test_too_large);
    RUN(test_request_line_limit);
    RUN(test_every_prefix_is_incomplete);
    return unit_finish();
}
