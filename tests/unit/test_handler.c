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
    const char *paths[] = {"/", "/anything", "/a/b?c=d", "/wait", "/waiting/5", "*"};
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
    config_free(&cfg);
    return unit_finish();
}
