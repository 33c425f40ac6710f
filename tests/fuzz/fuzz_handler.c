/* libFuzzer harness: routing of arbitrary methods and paths (with rendering of /stats and /metrics).
 * The input is "METHOD PATH" (the path may carry /wait/, /delay/, /status/ and delay=, status=,
 * size= controls); the first byte picks the listener kind. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "handler.h"
#include "stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config cfg;
    static struct stats_segment *segment;
    static struct prng rng;
    static struct body_fill fill;
    if (segment == NULL) {
        char *argv[] = {"mockupstream", NULL};
        char *envp[] = {NULL};
        char err[256];
        config_load(&cfg, 1, argv, envp, err, sizeof(err));
        segment = stats_segment_create();
        segment->info.workers = 2;
        segment->workers[0].lateness[STATS_ARRIVAL_KERNEL].buckets[3] = 7;
        prng_seed(&rng, 1, 0);
        body_fill_init(&fill, cfg.body, cfg.body_bytes, cfg.max_response_bytes);
    }
    if (size < 1)
        return 0;
    struct handler_context ctx = {.config = &cfg, .stats = segment, .rng = &rng, .fill = &fill};
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const char *space = memchr(text, ' ', len);
    struct handler_request req = {
        .method = text,
        .method_len = space ? (size_t)(space - text) : len,
        .path = space ? space + 1 : text + len,
        .path_len = space ? len - (size_t)(space - text) - 1 : 0,
        .listener = (enum listener_kind)(data[0] % LISTENER_KIND_COUNT),
    };
    struct handler_response res;
    handler_route(&ctx, &req, &res);
    assert(res.status >= 200 && res.status < 600 && res.reason != NULL && res.content_type != NULL);
    assert(res.delay_ns <= cfg.max_delay_ns);
    assert(!(res.kind == HANDLER_KIND_CONTROL && res.delay_ns != 0));
    assert(res.body_len <= cfg.max_response_bytes || res.body_source != HANDLER_BODY_FILL);
    assert(res.body != NULL || res.body_len == 0);
    /* a benchmark answer only for origin-form targets (and OPTIONS "*"), never for CONNECT */
    if (res.status == 200 && res.kind != HANDLER_KIND_CONTROL)
        assert(req.path_len > 0 && (req.path[0] == '/' || (req.path_len == 1 && req.path[0] == '*')));
    if (req.method_len == 7 && memcmp(req.method, "CONNECT", 7) == 0)
        assert(res.status == 501);
    handler_response_release(&res);
    return 0;
}
