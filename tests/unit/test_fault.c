/* Unit tests for fault.h: parsing kind lists with distribution.h's weight rules, drawing (weights
 * within 1 percentage point over 100,000 draws, same seed same sequence), describing. */
#include <string.h>

#include "config.h"
#include "fault.h"
#include "handler.h"
#include "unit.h"

static int parse(struct fault_spec *spec, const char *text, char *err)
{
    return fault_spec_parse(spec, text, strlen(text), err, FAULT_ERROR_BYTES);
}

static void test_lone_kind_has_all_the_weight(void)
{
    struct fault_spec spec;
    char err[FAULT_ERROR_BYTES];
    static const char *const names[] = {"reset", "close", "hang", "partial", "garbage"};
    for (int k = 0; k < 5; k++) {
        CHECK(parse(&spec, names[k], err) == 0);
        CHECK(spec.count == 1 && spec.items[0].kind == k + 1 && spec.items[0].weight_ppm == FAULT_WEIGHT_FULL_PPM);
        CHECK(strcmp(fault_kind_name((enum fault_kind)(k + 1)), names[k]) == 0);
    }
    CHECK(parse(&spec, " ReSeT\t", err) == 0 && spec.items[0].kind == FAULT_RESET);
}

static void test_weighted_list(void)
{
    struct fault_spec spec;
    char err[FAULT_ERROR_BYTES];
    CHECK(parse(&spec, "reset:1,hang:0.5", err) == 0);
    CHECK(spec.count == 2);
    CHECK(spec.items[0].kind == FAULT_RESET && spec.items[0].weight_ppm == 10000);
    CHECK(spec.items[1].kind == FAULT_HANG && spec.items[1].weight_ppm == 5000);
    CHECK(parse(&spec, "partial:10 , garbage:0.0001,close:89.9999", err) == 0 && spec.count == 3);
    CHECK(spec.items[1].weight_ppm == 1 && spec.items[2].weight_ppm == 899999);
    CHECK(parse(&spec, "reset:100", err) == 0 && spec.items[0].weight_ppm == FAULT_WEIGHT_FULL_PPM);
    CHECK(parse(&spec, "reset:0", err) == 0 && spec.items[0].weight_ppm == 0);
}

static void test_refusals_name_the_rule(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"", "empty"},
        {"  ", "empty"},
        {"explode", "unknown fault 'explode' (allowed: reset, close, hang, partial, garbage)"},
        {"reset:1,", "item 2 is empty"},
        {",reset", "item 1 is empty"},
        {"reset:", "weight '' of reset is not a percentage"},
        {"reset:101", "not a percentage"},
        {"reset:1.00001", "not a percentage"},
        {"reset:-1", "not a percentage"},
        {"reset:1e2", "not a percentage"},
        {"reset:60,hang:40.0001", "weights add up to 100.0001 %"},
        {"reset:1,hang", "'hang' has no weight"},
        {"reset,hang", "'reset' has no weight"},
        {"reset:1,RESET:2", "'reset' is given twice"},
        {"reset :1", "unknown fault 'reset '"},
        {"re\x01set", "unknown fault 're?set'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fault_spec spec;
        char err[FAULT_ERROR_BYTES] = "";
        int rc = parse(&spec, cases[i].text, err);
        CHECK(rc == -1 && spec.count == 0);
        if (strstr(err, cases[i].want) == NULL) {
            printf("  '%s': got '%s', want '%s'\n", cases[i].text, err, cases[i].want);
            CHECK(0);
        }
    }
    /* a long value is quoted cut short, and the message still fits */
    char long_text[600];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    struct fault_spec spec;
    char err[FAULT_ERROR_BYTES];
    CHECK(parse(&spec, long_text, err) == -1 && strlen(err) < sizeof(err) - 1 && strstr(err, "...") != NULL);
}

static void test_weights_hold_within_one_point(void)
{
    struct fault_spec spec;
    char err[FAULT_ERROR_BYTES];
    CHECK(parse(&spec, "reset:10,close:5,hang:0.5,partial:30,garbage:1", err) == 0);
    struct prng rng;
    prng_seed(&rng, 42, 0);
    unsigned counts[FAULT_KIND_COUNT] = {0};
    const unsigned n = 100000;
    for (unsigned i = 0; i < n; i++)
        counts[fault_spec_draw(&spec, &rng)]++;
    const double want_percent[FAULT_KIND_COUNT] = {53.5, 10, 5, 0.5, 30, 1};
    for (int k = 0; k < FAULT_KIND_COUNT; k++) {
        double got = 100.0 * counts[k] / n, diff = got - want_percent[k];
        if (diff > 1 || diff < -1) {
            printf("  %s: %.2f %% (want %.2f %%)\n", fault_kind_name((enum fault_kind)k), got, want_percent[k]);
            CHECK(0);
        }
    }
}

static void test_same_seed_same_sequence_and_lone_kind_draws_nothing(void)
{
    struct fault_spec spec, lone;
    char err[FAULT_ERROR_BYTES];
    CHECK(parse(&spec, "reset:50,hang:25", err) == 0);
    CHECK(parse(&lone, "close", err) == 0);
    struct prng a, b;
    prng_seed(&a, 7, 3);
    prng_seed(&b, 7, 3);
    for (int i = 0; i < 1000; i++)
        CHECK(fault_spec_draw(&spec, &a) == fault_spec_draw(&spec, &b));
    /* a lone kind (and an empty spec) leaves the stream where it was */
    struct fault_spec none = {0};
    CHECK(fault_spec_draw(&lone, &a) == FAULT_CLOSE);
    CHECK(fault_spec_draw(&none, &a) == FAULT_NONE);
    CHECK(prng_next(&a) == prng_next(&b));
}

static void test_describe_round_trips(void)
{
    static const struct {
        const char *text, *canonical;
    } cases[] = {
        {"reset", "reset"},
        {"RESET:100", "reset"},
        {" reset:1 ,hang:0.50", "reset:1,hang:0.5"},
        {"garbage:0.0001,partial:99.9999", "garbage:0.0001,partial:99.9999"},
        {"close:0", "close:0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fault_spec spec, back;
        char err[FAULT_ERROR_BYTES], text[FAULT_DESCRIBE_BYTES];
        CHECK(parse(&spec, cases[i].text, err) == 0);
        size_t n = fault_spec_describe(&spec, text, sizeof(text));
        CHECK(n == strlen(cases[i].canonical) && strcmp(text, cases[i].canonical) == 0);
        CHECK(parse(&back, text, err) == 0 && memcmp(&back, &spec, sizeof(spec)) == 0);
    }
    struct fault_spec none = {0};
    char text[8] = "x";
    CHECK(fault_spec_describe(&none, text, sizeof(text)) == 0 && text[0] == '\0');
}

/* handler_route with faults: who may ask, which source wins, and that an error answer never carries
 * a fault. */
static uint8_t route_fault(const struct config *cfg, const char *method, const char *path, const char *header, int *status)
{
    static struct prng rng;
    prng_seed(&rng, 1, 0);
    struct handler_context ctx = {.config = cfg, .stats = NULL, .rng = &rng, .fill = NULL};
    struct handler_request req = {.method = method, .method_len = strlen(method), .path = path, .path_len = strlen(path),
                                  .listener = LISTENER_HTTP};
    if (header != NULL)
        req.headers.of[REQUEST_CONTROL_FAULT] = (struct request_control_value){header, strlen(header)};
    struct handler_response res;
    handler_route(&ctx, &req, &res);
    *status = res.status;
    uint8_t fault = res.fault;
    handler_response_release(&res);
    return fault;
}

static void test_handler_routes_faults(void)
{
    char err[256];
    char *off_argv[] = {"mockupstream", NULL}, *on_argv[] = {"mockupstream", "--allow-faults", NULL},
         *flag_argv[] = {"mockupstream", "--allow-faults", "--fault", "close", NULL};
    char *envp[] = {NULL};
    struct config off, on, flag;
    CHECK(config_load(&off, 1, off_argv, envp, err, sizeof(err)) == CONFIG_OK);
    CHECK(config_load(&on, 2, on_argv, envp, err, sizeof(err)) == CONFIG_OK);
    CHECK(config_load(&flag, 4, flag_argv, envp, err, sizeof(err)) == CONFIG_OK);
    int status;
    /* off: 403, never a fault */
    CHECK(route_fault(&off, "GET", "/?fault=reset", NULL, &status) == FAULT_NONE && status == 403);
    CHECK(route_fault(&off, "GET", "/", "hang", &status) == FAULT_NONE && status == 403);
    CHECK(route_fault(&off, "GET", "/", NULL, &status) == FAULT_NONE && status == 200);
    /* on: query, then header; percent-encoded query values are decoded */
    CHECK(route_fault(&on, "GET", "/?fault=reset", "hang", &status) == FAULT_RESET && status == 200);
    CHECK(route_fault(&on, "GET", "/?fault=partial%3A100", NULL, &status) == FAULT_PARTIAL);
    CHECK(route_fault(&on, "GET", "/", "garbage", &status) == FAULT_GARBAGE);
    CHECK(route_fault(&on, "GET", "/", NULL, &status) == FAULT_NONE && status == 200);
    /* a malformed spec, or another bad parameter beside a fault, is a 400 without a fault */
    CHECK(route_fault(&on, "GET", "/?fault=reset:200", NULL, &status) == FAULT_NONE && status == 400);
    CHECK(route_fault(&on, "GET", "/?fault=reset&delay=nope", NULL, &status) == FAULT_NONE && status == 400);
    CHECK(route_fault(&on, "CONNECT", "/?fault=reset", NULL, &status) == FAULT_NONE && status == 501);
    /* control paths never carry one */
    CHECK(route_fault(&on, "GET", "/healthz?fault=reset", "reset", &status) == FAULT_NONE && status == 200);
    /* --fault applies to every request unless the request names its own */
    CHECK(route_fault(&flag, "GET", "/", NULL, &status) == FAULT_CLOSE);
    CHECK(route_fault(&flag, "GET", "/?fault=reset:0", NULL, &status) == FAULT_NONE && status == 200);
    CHECK(route_fault(&flag, "GET", "/", "hang", &status) == FAULT_HANG);
    config_free(&off);
    config_free(&on);
    config_free(&flag);
}

int main(void)
{
    RUN(test_lone_kind_has_all_the_weight);
    RUN(test_weighted_list);
    RUN(test_refusals_name_the_rule);
    RUN(test_weights_hold_within_one_point);
    RUN(test_same_seed_same_sequence_and_lone_kind_draws_nothing);
    RUN(test_describe_round_trips);
    RUN(test_handler_routes_faults);
    return unit_finish();
}
