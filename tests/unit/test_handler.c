/* Unit tests for server/handler.c: routing is the same for every protocol path, so it is tested here
 * once, without sockets. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "handler.h"
#include "stats.h"
#include "unit.h"

static struct config cfg;
static struct stats_segment *segment;
static struct handler_context ctx;

static void route(const char *method, const char *path, enum stats_listener listener, struct handler_response *res)
{
    struct handler_request req = {.method = method, .method_len = strlen(method), .path = path, .path_len = strlen(path),
                                  .listener = listener};
    handler_route(&ctx, &req, res);
}

static void test_any_path_gets_body_after_default_delay(void)
{
    const char *paths[] = {"/", "/anything", "/a/b?c=d", "/wait", "/waiting/5", "/a%41", "/stats%3Fformat=json", "/%2Fhealthz",
                           "/healthz/", "/?q=100%"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct handler_response res;
        route("GET", paths[i], STATS_LISTENER_HTTP, &res);
        CHECK(res.status == 200);
        CHECK(res.delay_ns == cfg.delay_ns);
        CHECK(!res.is_control);
        CHECK(res.body_len == strlen("Hello world!\n") && memcmp(res.body, "Hello world!\n", res.body_len) == 0);
        CHECK(strcmp(res.content_type, "text/plain") == 0);
        handler_response_release(&res);
    }
}

static void test_wait_path_sets_delay(void)
{
    struct handler_response res;
    route("POST", "/wait/25", STATS_LISTENER_HTTP, &res);
    CHECK(res.status == 200 && res.delay_ns == 25000000ull);
    handler_response_release(&res);
    route("GET", "/wait/0?x=1", STATS_LISTENER_TLS, &res);
    CHECK(res.status == 200 && res.delay_ns == 0);
    handler_response_release(&res);
    route("GET", "/wait/60000", STATS_LISTENER_HTTP, &res); /* exactly --max-delay */
    CHECK(res.status == 200 && res.delay_ns == 60000000000ull);
    handler_response_release(&res);
}

static void test_wait_refusals(void)
{
    const char *bad[] = {"/wait/", "/wait/abc", "/wait/-5", "/wait/1.5", "/wait/60001", "/wait/99999999999999", "/wait/5/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct handler_response res;
        route("GET", bad[i], STATS_LISTENER_HTTP, &res);
        CHECK(res.status == 400);
        CHECK(res.delay_ns == 0);
        CHECK(res.body_len > 0 && strstr(res.body, "--max-delay") != NULL);
        handler_response_release(&res);
    }
}

static void test_head_is_flagged(void)
{
    struct handler_response res;
    route("HEAD", "/", STATS_LISTENER_HTTP, &res);
    CHECK(res.is_head && res.status == 200 && res.body_len == 13);
    handler_response_release(&res);
}

static void test_control_paths_answer_at_once(void)
{
    const char *paths[] = {"/stats", "/stats?format=json", "/stats?format=prometheus", "/metrics", "/healthz"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct handler_response res;
        route("GET", paths[i], STATS_LISTENER_HTTP, &res);
        CHECK(res.status == 200);
        CHECK(res.is_control);
        CHECK(res.delay_ns == 0);
        CHECK(res.body_len > 0);
        handler_response_release(&res);
    }
    struct handler_response res;
    route("GET", "/healthz", STATS_LISTENER_STATS, &res);
    CHECK(res.status == 200 && res.body_len == 3 && memcmp(res.body, "ok\n", 3) == 0);
    handler_response_release(&res);
}

static void test_control_refusals(void)
{
    struct handler_response res;
    route("POST", "/stats", STATS_LISTENER_HTTP, &res);
    CHECK(res.status == 405 && res.is_control && res.allow != NULL);
    handler_response_release(&res);
    route("DELETE", "/metrics", STATS_LISTENER_HTTP, &res);
    CHECK(res.status == 405);
    handler_response_release(&res);
    route("GET", "/stats?format=bogus", STATS_LISTENER_HTTP, &res);
    CHECK(res.status == 400 && res.is_control);
    handler_response_release(&res);
    /* the stats-only listener serves nothing else, and never holds a request */
    route("GET", "/wait/10", STATS_LISTENER_STATS, &res);
    CHECK(res.status == 404 && res.is_control && res.delay_ns == 0);
    handler_response_release(&res);
}

/* The path is percent-decoded before it is matched; the query is not. */
static void test_percent_decoded_routes(void)
{
    static const struct {
        const char *path;
        uint64_t delay_ns;
    } waits[] = {
        {"/wai%74/25", 25000000ull}, {"/%77%61%69%74/25", 25000000ull}, {"/wait%2F30", 30000000ull},
        {"/wait%2f30", 30000000ull}, {"/wait/%33%30", 30000000ull}, {"/wait/%330?x=%zz", 30000000ull},
    };
    for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
        struct handler_response res;
        route("GET", waits[i].path, STATS_LISTENER_HTTP, &res);
        CHECK(res.status == 200 && !res.is_control && res.delay_ns == waits[i].delay_ns);
        handler_response_release(&res);
    }
    const char *controls[] = {"/%68ealthz", "/healthz%3f", "/%73tats?format=json", "/metric%73"};
    for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++) {
        struct handler_response res;
        route("GET", controls[i], STATS_LISTENER_HTTP, &res);
        /* "/healthz%3f" decodes to "/healthz?": not /healthz, a benchmark path */
        CHECK(res.status == 200 && res.is_control == (i != 1) && res.delay_ns == (i == 1 ? cfg.delay_ns : 0));
        handler_response_release(&res);
    }
    struct handler_response res;
    route("GET", "/%68ealthz", STATS_LISTENER_STATS, &res);
    CHECK(res.status == 200 && res.body_len == 3 && memcmp(res.body, "ok\n", 3) == 0);
    handler_response_release(&res);
    /* the query is matched raw: an encoded "json" is not "json" */
    route("GET", "/stats?format=%6Ason", STATS_LISTENER_HTTP, &res);
    CHECK(res.status == 400 && res.is_control);
    handler_response_release(&res);
}

static void test_percent_decoding_refusals(void)
{
    const char *bad[] = {"/%", "/a%", "/a%4", "/%4?x", "/%zz", "/%g0", "/%0g", "/%00", "/wait/%00", "/x%00y",
                         "/healthz%", "/wai%74/%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct handler_response res;
        route("GET", bad[i], STATS_LISTENER_HTTP, &res);
        CHECK(res.status == 400 && res.delay_ns == 0 && strstr(res.body, "percent-encoding") != NULL);
        if (res.status != 400)
            printf("  %s: %d\n", bad[i], res.status);
        handler_response_release(&res);
    }
}

/* Decoded paths longer than the router's buffer: only a prefix is kept, and it can match no route. */
static void test_long_decoded_paths(void)
{
    char path[1024];
    struct handler_response res;
    /* /wait/ and 100 encoded zeros then 5: too many digits, refused as a bad wait, never a 5 ms wait */
    strcpy(path, "/wait/");
    for (int i = 0; i < 100; i++)
        strcat(path, "%30");
    strcat(path, "5");
    route("GET", path, STATS_LISTENER_HTTP, &res);
    CHECK(res.status == 400 && strstr(res.body, "--max-delay") != NULL);
    handler_response_release(&res);
    /* 12 digits fit, even when all are encoded */
    strcpy(path, "/wait/");
    for (int i = 0; i < 11; i++)
        strcat(path, "%30");
    strcat(path, "%37");
    route("GET", path, STATS_LISTENER_HTTP, &res);
    CHECK(res.status == 200 && res.delay_ns == 7000000ull);
    handler_response_release(&res);
    /* "/healthz" followed by encoded bytes up to and past the buffer: never /healthz */
    for (size_t extra = 1; extra < 80; extra++) {
        strcpy(path, "/healthz");
        for (size_t i = 0; i < extra; i++)
            strcat(path, "%41");
        route("GET", path, STATS_LISTENER_HTTP, &res);
        CHECK(res.status == 200 && !res.is_control);
        handler_response_release(&res);
    }
    /* a malformed escape far past the buffer is still found */
    memset(path, 'a', sizeof(path));
    memcpy(path, "/%41", 4);
    strcpy(path + 1000, "%zz");
    route("GET", path, STATS_LISTENER_HTTP, &res);
    CHECK(res.status == 400);
    handler_response_release(&res);
}

/* Targets that are not origin-form, and CONNECT. */
static void test_request_target_refusals(void)
{
    static const struct {
        const char *method, *path;
        int status;
    } cases[] = {
        {"GET", "", 400},                  /* empty HTTP/2 :path */
        {"GET", "http://x/healthz", 400},  /* absolute-form is HTTP/1's, reduced there */
        {"GET", "healthz", 400},
        {"GET", "*", 400},                 /* asterisk-form is OPTIONS' */
        {"HEAD", "*", 400},
        {"OPTIONS", "*", 200},
        {"CONNECT", "example.com:443", 501},
        {"CONNECT", "/", 501},
        {"CONNECT", "", 501},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct handler_response res;
        route(cases[i].method, cases[i].path, STATS_LISTENER_HTTP, &res);
        CHECK(res.status == cases[i].status);
        CHECK(res.status == 200 ? res.delay_ns == cfg.delay_ns : res.delay_ns == 0 && res.body_len > 0);
        if (res.status != cases[i].status)
            printf("  %s %s: %d\n", cases[i].method, cases[i].path, res.status);
        handler_response_release(&res);
    }
    struct handler_response res;
    route("CONNECT", "x:1", STATS_LISTENER_STATS, &res);
    CHECK(res.status == 501 && res.is_control);
    handler_response_release(&res);
}

static void test_reason_phrases(void)
{
    CHECK(strcmp(handler_reason_phrase(414), "URI Too Long") == 0);
    CHECK(strcmp(handler_reason_phrase(431), "Request Header Fields Too Large") == 0);
    CHECK(strcmp(handler_reason_phrase(501), "Not Implemented") == 0);
    CHECK(strcmp(handler_reason_phrase(408), "Request Timeout") == 0);
    CHECK(strcmp(handler_reason_phrase(505), "HTTP Version Not Supported") == 0);
    CHECK(strcmp(handler_reason_phrase(299), "Unknown") == 0);
}

int main(void)
{
    char err[256];
    char *argv[] = {"mockupstream", "--delay", "7ms", NULL};
    char *envp[] = {NULL};
    if (config_load(&cfg, 3, argv, envp, err, sizeof(err)) != CONFIG_OK) {
        printf("config_load: %s\n", err);
        return 1;
    }
    segment = stats_segment_create();
    segment->info.workers = 1;
    ctx = (struct handler_context){.config = &cfg, .stats = segment};

    RUN(test_any_path_gets_body_after_default_delay);
    RUN(test_wait_path_sets_delay);
    RUN(test_wait_refusals);
    RUN(test_head_is_flagged);
    RUN(test_control_paths_answer_at_once);
    RUN(test_control_refusals);
    RUN(test_percent_decoded_routes);
    RUN(test_percent_decoding_refusals);
    RUN(test_long_decoded_paths);
    RUN(test_request_target_refusals);
    RUN(test_reason_phrases);
    config_free(&cfg);
    return unit_finish();
}
