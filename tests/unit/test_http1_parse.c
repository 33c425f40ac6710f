/* Unit tests for server/http1_parse.c: what is accepted, what is refused with which status, and
 * that every strict prefix of a valid request is "incomplete". */
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
    CHECK(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &r, &st) > 0);
    CHECK(r.body_kind == HTTP1_BODY_LENGTH && r.content_length == 5);
    CHECK(parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &r, &st) > 0 && r.body_kind == HTTP1_BODY_CHUNKED);
    CHECK(parse("HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n", &r, &st) > 0 && !r.keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\n\r\n", &r, &st) > 0 && !r.keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r, &st) > 0 && r.keep_alive);
    CHECK(parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", &r, &st) > 0 && r.expect_continue);
    CHECK(parse("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", &r, &st) > 0 && !r.expect_continue); /* no body */
    CHECK(parse("OPTIONS * HTTP/1.1\r\n\r\n", &r, &st) > 0);
    CHECK(parse("GET http://h/p HTTP/1.1\r\n\r\n", &r, &st) > 0);
}

static void test_upgrade_detection(void)
{
    struct http1_request r;
    int st;
    CHECK(parse("GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\n\r\n", &r, &st) > 0);
    CHECK(r.upgrade_h2c);
    CHECK(parse("GET / HTTP/1.1\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\n\r\n", &r, &st) > 0 && !r.upgrade_h2c);
    CHECK(parse("GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", &r, &st) > 0 && !r.upgrade_h2c);
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
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nExpect: something\r\n\r\n", 417},
        {"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
        {"G@T / HTTP/1.1\r\n\r\n", 400},
        {"GET nopath HTTP/1.1\r\n\r\n", 400},
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
    char many[8192] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 150; i++)
        sprintf(many + strlen(many), "X-%d: y\r\n", i);
    strcat(many, "\r\n");
    CHECK(parse(many, &r, &st) == -1 && st == 431);
    free(big);
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
    RUN(test_upgrade_detection);
    RUN(test_refusals);
    RUN(test_too_large);
    RUN(test_every_prefix_is_incomplete);
    return unit_finish();
}
