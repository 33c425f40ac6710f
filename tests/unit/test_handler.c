/* Unit tests for server/handler.c: routing is the same for every protocol path, so it is tested here
 * once, without sockets. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "clock.h"
#include "handler.h"
#include "stats.h"
#include "unit.h"

static struct config cfg;
static struct stats_segment *segment;
static struct handler_context ctx;
static struct prng rng;
static struct body_fill fill;

static void route(const char *method, const char *path, enum listener_kind listener, struct handler_response *res)
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
        route("GET", paths[i], LISTENER_HTTP, &res);
        CHECK(res.status == 200);
        CHECK(res.delay_ns == cfg.delay_ns);
        CHECK((res.kind != HANDLER_KIND_CONTROL));
        CHECK(res.body_len == strlen("Hello world!\n") && memcmp(res.body, "Hello world!\n", res.body_len) == 0);
        CHECK(strcmp(res.content_type, "text/plain") == 0);
        handler_response_release(&res);
    }
}

static void test_wait_path_sets_delay(void)
{
    struct handler_response res;
    route("POST", "/wait/25", LISTENER_HTTP, &res);
    CHECK(res.status == 200 && res.delay_ns == 25000000ull);
    handler_response_release(&res);
    route("GET", "/wait/0?x=1", LISTENER_TLS, &res);
    CHECK(res.status == 200 && res.delay_ns == 0);
    handler_response_release(&res);
    route("GET", "/wait/60000", LISTENER_HTTP, &res); /* exactly --max-delay */
    CHECK(res.status == 200 && res.delay_ns == 60000000000ull);
    handler_response_release(&res);
}

static void test_wait_refusals(void)
{
    const char *bad[] = {"/wait/", "/wait/abc", "/wait/-5", "/wait/1.5.2", "/wait/60001", "/wait/99999999999999", "/wait/5/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct handler_response res;
        route("GET", bad[i], LISTENER_HTTP, &res);
        CHECK(res.status == 400);
        CHECK(res.delay_ns == 0);
        /* each names what is allowed: the --max-delay bound, or the range it gives */
        bool says_allowed = res.body_len > 0 && strstr(res.body, "bad /wait/<ms>: ") == res.body && strstr(res.body, "allowed") != NULL;
        CHECK(says_allowed);
        if (!says_allowed)
            printf("  %s: %.*s", bad[i], (int)res.body_len, res.body);
        handler_response_release(&res);
    }
}

static void test_head_is_flagged(void)
{
    struct handler_response res;
    route("HEAD", "/", LISTENER_HTTP, &res);
    CHECK(res.is_head && res.status == 200 && res.body_len == 13);
    handler_response_release(&res);
}

static void test_control_paths_answer_at_once(void)
{
    const char *paths[] = {"/stats", "/stats?format=json", "/stats?format=prometheus", "/metrics", "/healthz"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct handler_response res;
        route("GET", paths[i], LISTENER_HTTP, &res);
        CHECK(res.status == 200);
        CHECK((res.kind == HANDLER_KIND_CONTROL));
        CHECK(res.delay_ns == 0);
        CHECK(res.body_len > 0);
        handler_response_release(&res);
    }
    struct handler_response res;
    route("GET", "/healthz", LISTENER_STATS, &res);
    CHECK(res.status == 200 && res.body_len == 3 && memcmp(res.body, "ok\n", 3) == 0);
    handler_response_release(&res);
}

static void test_control_refusals(void)
{
    struct handler_response res;
    route("POST", "/stats", LISTENER_HTTP, &res);
    CHECK(res.status == 405 && (res.kind == HANDLER_KIND_CONTROL) && res.allow != NULL);
    handler_response_release(&res);
    route("DELETE", "/metrics", LISTENER_HTTP, &res);
    CHECK(res.status == 405);
    handler_response_release(&res);
    route("GET", "/stats?format=bogus", LISTENER_HTTP, &res);
    CHECK(res.status == 400 && (res.kind == HANDLER_KIND_CONTROL));
    handler_response_release(&res);
    /* the stats-only listener serves nothing else, and never holds a request */
    route("GET", "/wait/10", LISTENER_STATS, &res);
    CHECK(res.status == 404 && (res.kind == HANDLER_KIND_CONTROL) && res.delay_ns == 0);
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
        route("GET", waits[i].path, LISTENER_HTTP, &res);
        CHECK(res.status == 200 && (res.kind != HANDLER_KIND_CONTROL) && res.delay_ns == waits[i].delay_ns);
        handler_response_release(&res);
    }
    const char *controls[] = {"/%68ealthz", "/healthz%3f", "/%73tats?format=json", "/metric%73"};
    for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++) {
        struct handler_response res;
        route("GET", controls[i], LISTENER_HTTP, &res);
        /* "/healthz%3f" decodes to "/healthz?": not /healthz, a benchmark path */
        CHECK(res.status == 200 && (res.kind == HANDLER_KIND_CONTROL) == (i != 1) && res.delay_ns == (i == 1 ? cfg.delay_ns : 0));
        handler_response_release(&res);
    }
    struct handler_response res;
    route("GET", "/%68ealthz", LISTENER_STATS, &res);
    CHECK(res.status == 200 && res.body_len == 3 && memcmp(res.body, "ok\n", 3) == 0);
    handler_response_release(&res);
    /* the query is matched raw: an encoded "json" is not "json" */
    route("GET", "/stats?format=%6Ason", LISTENER_HTTP, &res);
    CHECK(res.status == 400 && (res.kind == HANDLER_KIND_CONTROL));
    handler_response_release(&res);
}

static void test_percent_decoding_refusals(void)
{
    const char *bad[] = {"/%", "/a%", "/a%4", "/%4?x", "/%zz", "/%g0", "/%0g", "/%00", "/wait/%00", "/x%00y",
                         "/healthz%", "/wai%74/%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct handler_response res;
        route("GET", bad[i], LISTENER_HTTP, &res);
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
    route("GET", path, LISTENER_HTTP, &res);
    CHECK(res.status == 400 && strstr(res.body, "--max-delay") != NULL);
    handler_response_release(&res);
    /* 12 digits fit, even when all are encoded */
    strcpy(path, "/wait/");
    for (int i = 0; i < 11; i++)
        strcat(path, "%30");
    strcat(path, "%37");
    route("GET", path, LISTENER_HTTP, &res);
    CHECK(res.status == 200 && res.delay_ns == 7000000ull);
    handler_response_release(&res);
    /* "/healthz" followed by encoded bytes up to and past the buffer: never /healthz */
    for (size_t extra = 1; extra < 80; extra++) {
        strcpy(path, "/healthz");
        for (size_t i = 0; i < extra; i++)
            strcat(path, "%41");
        route("GET", path, LISTENER_HTTP, &res);
        CHECK(res.status == 200 && (res.kind != HANDLER_KIND_CONTROL));
        handler_response_release(&res);
    }
    /* a malformed escape far past the buffer is still found */
    memset(path, 'a', sizeof(path));
    memcpy(path, "/%41", 4);
    strcpy(path + 1000, "%zz");
    route("GET", path, LISTENER_HTTP, &res);
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
        route(cases[i].method, cases[i].path, LISTENER_HTTP, &res);
        CHECK(res.status == cases[i].status);
        CHECK(res.status == 200 ? res.delay_ns == cfg.delay_ns : res.delay_ns == 0 && res.body_len > 0);
        if (res.status != cases[i].status)
            printf("  %s %s: %d\n", cases[i].method, cases[i].path, res.status);
        handler_response_release(&res);
    }
    struct handler_response res;
    route("CONNECT", "x:1", LISTENER_STATS, &res);
    CHECK(res.status == 501 && (res.kind == HANDLER_KIND_CONTROL));
    handler_response_release(&res);
}

static void test_reason_phrases(void)
{
    CHECK(strcmp(handler_reason_phrase(414), "URI Too Long") == 0);
    CHECK(strcmp(handler_reason_phrase(431), "Request Header Fields Too Large") == 0);
    CHECK(strcmp(handler_reason_phrase(501), "Not Implemented") == 0);
    CHECK(strcmp(handler_reason_phrase(408), "Request Timeout") == 0);
    CHECK(strcmp(handler_reason_phrase(505), "HTTP Version Not Supported") == 0);
    CHECK(strcmp(handler_reason_phrase(299), "") == 0); /* no phrase for codes without one, as nginx */
    CHECK(strcmp(handler_reason_phrase(99), "Unknown") == 0);
}

static void route_with(const char *path, const char *delay, const char *status, const char *size, struct handler_response *res)
{
    struct handler_request req = {.method = "GET", .method_len = 3, .path = path, .path_len = strlen(path),
                                  .listener = LISTENER_HTTP};
    req.headers.of[REQUEST_CONTROL_DELAY] = (struct request_control_value){delay, delay ? strlen(delay) : 0};
    req.headers.of[REQUEST_CONTROL_STATUS] = (struct request_control_value){status, status ? strlen(status) : 0};
    req.headers.of[REQUEST_CONTROL_SIZE] = (struct request_control_value){size, size ? strlen(size) : 0};
    handler_route(&ctx, &req, res);
}

static void test_controls_from_path_query_and_headers(void)
{
    struct handler_response res;
    route_with("/wait/0.25", NULL, NULL, NULL, &res);
    CHECK(res.status == 200 && res.delay_ns == 250000);
    handler_response_release(&res);
    route_with("/delay/2", NULL, NULL, NULL, &res); /* httpbin: seconds */
    CHECK(res.status == 200 && res.delay_ns == 2000000000ull);
    handler_response_release(&res);
    route_with("/delay/25ms", NULL, NULL, NULL, &res);
    CHECK(res.delay_ns == 25000000ull);
    handler_response_release(&res);
    route_with("/status/503", NULL, NULL, NULL, &res);
    CHECK(res.status == 503 && res.delay_ns == cfg.delay_ns && res.kind == HANDLER_KIND_BENCHMARK);
    handler_response_release(&res);
    route_with("/x?delay=1ms&status=201&size=100", NULL, NULL, NULL, &res);
    CHECK(res.status == 201 && res.delay_ns == 1000000 && res.body_len == 100 && res.body_source == HANDLER_BODY_FILL);
    CHECK(memcmp(res.body, cfg.body, cfg.body_bytes) == 0 && res.body[cfg.body_bytes] == cfg.body[0]); /* the body repeated */
    handler_response_release(&res);
    route_with("/x?delay=1%6Ds", NULL, NULL, NULL, &res); /* query values are percent-decoded */
    CHECK(res.status == 200 && res.delay_ns == 1000000);
    handler_response_release(&res);
    route_with("/", "3ms", "418", "0", &res);
    CHECK(res.status == 418 && res.delay_ns == 3000000 && res.body_len == 0);
    handler_response_release(&res);
}

static void test_first_source_wins_per_parameter(void)
{
    struct handler_response res;
    route_with("/status/404?status=503&delay=1ms", "100ms", "500", "5", &res);
    CHECK(res.status == 404 && res.delay_ns == 1000000 && res.body_len == 5);
    handler_response_release(&res);
    route_with("/wait/2?delay=9ms", "100ms", NULL, NULL, &res);
    CHECK(res.delay_ns == 2000000);
    handler_response_release(&res);
}

static void test_bodiless_statuses_and_sizes(void)
{
    const char *paths[] = {"/status/204", "/status/205", "/status/304"};
    for (size_t i = 0; i < 3; i++) {
        struct handler_response res;
        route_with(paths[i], NULL, NULL, "1000", &res);
        CHECK(res.no_body && res.body_len == 0);
        handler_response_release(&res);
    }
    struct handler_response res;
    route_with("/?size=16m", NULL, NULL, NULL, &res); /* the default --max-response-size */
    CHECK(res.status == 200 && res.body_len == 16u * 1024 * 1024 && res.body[res.body_len - 1] != 0);
    handler_response_release(&res);
    route_with("/", NULL, NULL, "13", &res); /* the configured body's own size: the default answer */
    CHECK(handler_response_is_default_benchmark(&res));
    handler_response_release(&res);
}

/* Routes `path` with X-Mock-Dribble / X-Mock-Rate headers (NULL: absent). */
static void route_paced(const char *path, const char *dribble, const char *rate, struct handler_response *res)
{
    struct handler_request req = {.method = "GET", .method_len = 3, .path = path, .path_len = strlen(path),
                                  .listener = LISTENER_HTTP};
    req.headers.of[REQUEST_CONTROL_DRIBBLE] = (struct request_control_value){dribble, dribble ? strlen(dribble) : 0};
    req.headers.of[REQUEST_CONTROL_RATE] = (struct request_control_value){rate, rate ? strlen(rate) : 0};
    handler_route(&ctx, &req, res);
}

static void test_pacing_parts_and_times(void)
{
    struct handler_response res;
    route_paced("/?dribble=5/500ms&size=5003", NULL, NULL, &res);
    CHECK(res.status == 200 && res.pace.parts == 5 && res.pace.duration_ns == 500 * NS_PER_MS);
    CHECK(!handler_response_is_default_benchmark(&res));
    /* parts cover the body exactly, in sizes that differ by at most one byte, due evenly */
    size_t smallest = SIZE_MAX, largest = 0;
    CHECK(handler_pace_part_end(&res.pace, res.body_len, 0) == 0);
    for (uint32_t k = 1; k <= res.pace.parts; k++) {
        size_t part = handler_pace_part_end(&res.pace, res.body_len, k) - handler_pace_part_end(&res.pace, res.body_len, k - 1);
        smallest = part < smallest ? part : smallest;
        largest = part > largest ? part : largest;
        CHECK(handler_pace_part_due_ns(&res.pace, k) == k * 100 * NS_PER_MS);
    }
    CHECK(handler_pace_part_end(&res.pace, res.body_len, res.pace.parts) == 5003 && largest - smallest <= 1 && smallest == 1000);
    handler_response_release(&res);

    /* parts are clamped to the body's bytes; the duration stays */
    route_paced("/", "100/300ms", NULL, &res);
    CHECK(res.pace.parts == 13 && res.pace.duration_ns == 300 * NS_PER_MS && res.body_len == 13);
    handler_response_release(&res);

    /* parts at least 1 ms apart: more are merged (a part is a write and a wake-up) */
    route_paced("/?dribble=1000000/3s&size=1m", NULL, NULL, &res);
    CHECK(res.pace.parts == 3000 && res.pace.duration_ns == 3 * NS_PER_SEC);
    handler_response_release(&res);
    route_paced("/?dribble=5/0&size=100", NULL, NULL, &res); /* no time at all: one part, with the head */
    CHECK(res.pace.parts == 1 && res.pace.duration_ns == 0);
    handler_response_release(&res);

    /* rate: parts of rate/100 bytes, the whole taking body/rate */
    route_paced("/?rate=20k&size=10k", NULL, NULL, &res);
    CHECK(res.pace.parts == 51 && res.pace.duration_ns == 500 * NS_PER_MS); /* 10240 bytes in parts of at most 204 (20480 / 100) */
    handler_response_release(&res);
    route_paced("/?size=10", NULL, "2", &res); /* slower than 100 B/s: one byte per part */
    CHECK(res.pace.parts == 10 && res.pace.duration_ns == 5 * NS_PER_SEC);
    handler_response_release(&res);

    /* the query beats the header; nothing to pace: HEAD, 204, an empty body */
    route_paced("/?dribble=2/10ms", "4/1s", NULL, &res);
    CHECK(res.pace.parts == 2 && res.pace.duration_ns == 10 * NS_PER_MS);
    handler_response_release(&res);
    route_paced("/status/204?dribble=2/10ms", NULL, NULL, &res);
    CHECK(res.status == 204 && res.pace.parts == 0);
    handler_response_release(&res);
    route_paced("/?size=0&rate=1", NULL, NULL, &res);
    CHECK(res.status == 200 && res.pace.parts == 0);
    handler_response_release(&res);
    struct handler_request head = {.method = "HEAD", .method_len = 4, .path = "/?dribble=2/1s", .path_len = 14,
                                   .listener = LISTENER_HTTP};
    handler_route(&ctx, &head, &res);
    CHECK(res.status == 200 && res.pace.parts == 0);
    handler_response_release(&res);
}

static void test_pacing_refusals(void)
{
    static const struct {
        const char *path, *dribble, *rate, *needle;
    } cases[] = {
        {"/?dribble=0/1s", NULL, NULL, "dribble= in query"},
        {"/?dribble=10", NULL, NULL, "<parts>/<duration>"},
        {"/?dribble=x/1s", NULL, NULL, "parts 1..1000000"},
        {"/?dribble=1000001/1s", NULL, NULL, "parts 1..1000000"},
        {"/?dribble=10/abc", NULL, NULL, "dribble= in query"},
        {"/?dribble=10/61s", NULL, NULL, "--max-delay"},
        {"/", "10/", NULL, "X-Mock-Dribble header"},
        {"/?rate=0", NULL, NULL, "rate= in query"},
        {"/?rate=abc", NULL, NULL, "bytes per second"},
        {"/", NULL, "-5", "X-Mock-Rate header"},
        {"/?rate=1k&size=1m", NULL, NULL, "longer than --max-delay"},
        {"/?rate=1k&dribble=2/1s", NULL, NULL, "cannot be combined"},
        {"/?dribble=2/1s", NULL, "1k", "cannot be combined"},
        {"/status/204?dribble=0/1s", NULL, NULL, "dribble= in query"}, /* refused even where nothing is paced */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct handler_response res;
        route_paced(cases[i].path, cases[i].dribble, cases[i].rate, &res);
        bool ok = res.status == 400 && res.pace.parts == 0 && !res.no_body && res.body_len > 0 &&
                  memmem(res.body, res.body_len, cases[i].needle, strlen(cases[i].needle)) != NULL;
        if (!ok)
            fprintf(stderr, "case %zu (%s): %d %.*s\n", i, cases[i].path, res.status, (int)res.body_len, res.body);
        CHECK(ok);
        handler_response_release(&res);
    }
}

static void test_bad_controls_name_their_source(void)
{
    static const struct {
        const char *path, *delay, *status, *size, *needle;
    } cases[] = {
        {"/?delay=lognorm:1", NULL, NULL, NULL, "delay= in query"},
        {"/?status=99", NULL, NULL, NULL, "status= in query"},
        {"/?status=150", NULL, NULL, NULL, "a 1xx is interim"},
        {"/?size=17m", NULL, NULL, NULL, "--max-response-size"},
        {"/?delay=61s", NULL, NULL, NULL, "--max-delay"},
        {"/", "x", NULL, NULL, "X-Mock-Delay header"},
        {"/", NULL, "abc", NULL, "X-Mock-Status header"},
        {"/", NULL, NULL, "-1", "X-Mock-Size header"},
        {"/status/20x", NULL, NULL, NULL, "/status/<code>"},
        {"/delay/abc", NULL, NULL, NULL, "/delay/<duration>"},
        {"/?delay=%zz", NULL, NULL, NULL, "percent-encoding"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct handler_response res;
        route_with(cases[i].path, cases[i].delay, cases[i].status, cases[i].size, &res);
        CHECK(res.status == 400 && res.delay_ns == 0 && strstr(res.body, cases[i].needle) != NULL);
        CHECK(memchr(res.body, '\n', res.body_len) == res.body + res.body_len - 1); /* one line */
        if (res.status != 400 || strstr(res.body, cases[i].needle) == NULL)
            printf("  case %zu: %d %.*s\n", i, res.status, (int)res.body_len, res.body);
        handler_response_release(&res);
    }
}

static void test_weighted_status_uses_the_rest(void)
{
    int counts[600] = {0};
    for (int i = 0; i < 20000; i++) {
        struct handler_response res;
        route_with("/?status=503:50", NULL, NULL, NULL, &res);
        if (res.status >= 0 && res.status < 600)
            counts[res.status]++;
        handler_response_release(&res);
    }
    CHECK(counts[503] + counts[200] == 20000);
    CHECK(counts[503] > 9600 && counts[503] < 10400); /* 50 % +- 2 points: ~5.6 sd of a binomial */
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
    prng_seed(&rng, 1, 0);
    if (body_fill_init(&fill, cfg.body, cfg.body_bytes, cfg.max_response_bytes) != 0)
        return 1;
    ctx = (struct handler_context){.config = &cfg, .stats = segment, .rng = &rng, .fill = &fill};

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
    RUN(test_controls_from_path_query_and_headers);
    RUN(test_first_source_wins_per_parameter);
    RUN(test_bodiless_statuses_and_sizes);
    RUN(test_bad_controls_name_their_source);
    RUN(test_weighted_status_uses_the_rest);
    RUN(test_pacing_parts_and_times);
    RUN(test_pacing_refusals);
    body_fill_dispose(&fill);
    config_free(&cfg);
    return unit_finish();
}
