/* Unit tests for server/stats.c, stats_table.c, stats_snapshot.c, stats_render.c, stats_json.c and
 * server/process_metrics.c: histogram bounds and recording, exact status codes, lateness kept apart by
 * arrival, both documents rendered from one synthetic segment (the same figures in each, naming
 * conventions on every family), and the /proc readings of this very process. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "process_metrics.h"
#include "stats.h"
#include "stats_json.h"
#include "stats_render.h"
#include "unit.h"

static struct stats_segment *segment_new(uint32_t workers)
{
    struct stats_segment *s = stats_segment_create();
    s->info.workers = workers;
    snprintf(s->info.version, sizeof(s->info.version), "9.9.9");
    s->info.start_unix_ns = clock_realtime_ns();
    s->info.start_monotonic_ns = clock_monotonic_ns();
    return s;
}

static void segment_free(struct stats_segment *s)
{
    munmap(s, sizeof(*s));
}

static char *render(const struct stats_segment *s, int prometheus)
{
    struct strbuf out;
    strbuf_init(&out);
    if (prometheus)
        stats_render_prometheus(s, &out);
    else
        stats_render_json(s, &out);
    CHECK(!out.failed);
    return out.data; /* the caller frees */
}

static int contains_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[len] == '\n')
            return 1;
    return 0;
}

static void test_bucket_bounds_run_1us_to_100s_ten_per_decade(void)
{
    CHECK(stats_histogram_bucket_upper_ns[0] == 1000);
    CHECK(stats_histogram_bucket_upper_ns[10] == 10000);
    CHECK(stats_histogram_bucket_upper_ns[STATS_HISTOGRAM_BUCKET_COUNT - 1] == 100 * NS_PER_SEC);
    for (int b = 1; b < STATS_HISTOGRAM_BUCKET_COUNT; b++)
        CHECK(stats_histogram_bucket_upper_ns[b] > stats_histogram_bucket_upper_ns[b - 1]);
    /* bounds are inclusive upper bounds, as Prometheus' le */
    CHECK(stats_histogram_bucket_index(0) == 0);
    CHECK(stats_histogram_bucket_index(1000) == 0);
    CHECK(stats_histogram_bucket_index(1001) == 1);
    CHECK(stats_histogram_bucket_index(10 * NS_PER_MS) == 40);
    CHECK(stats_histogram_bucket_upper_ns[40] == 10 * NS_PER_MS);
    CHECK(stats_histogram_bucket_index(100 * NS_PER_SEC) == STATS_HISTOGRAM_BUCKET_COUNT - 1);
    CHECK(stats_histogram_bucket_index(100 * NS_PER_SEC + 1) == STATS_HISTOGRAM_BUCKET_COUNT);
    CHECK(stats_histogram_bucket_index(UINT64_MAX) == STATS_HISTOGRAM_BUCKET_COUNT);
}

static void test_histogram_record_counts_sums_and_keeps_the_max(void)
{
    struct stats_histogram h = {0};
    stats_histogram_record(&h, 5 * NS_PER_US);
    stats_histogram_record(&h, 3 * NS_PER_MS);
    stats_histogram_record(&h, 200 * NS_PER_SEC);
    CHECK(h.count == 3);
    CHECK(h.sum_ns == 5 * NS_PER_US + 3 * NS_PER_MS + 200 * NS_PER_SEC);
    CHECK(h.max_ns == 200 * NS_PER_SEC);
    CHECK(h.buckets[stats_histogram_bucket_index(5 * NS_PER_US)] == 1);
    CHECK(h.buckets[stats_histogram_bucket_index(3 * NS_PER_MS)] == 1);
    CHECK(h.buckets[STATS_HISTOGRAM_BUCKET_COUNT] == 1);
}

static void test_requests_are_counted_by_exact_status(void)
{
    struct stats_segment *s = segment_new(1);
    struct stats_worker_slot *slot = &s->workers[0];
    stats_request_done(slot, STATS_PROTOCOL_HTTP1, 0, 200, 0, 13);
    stats_request_done(slot, STATS_PROTOCOL_HTTP1, 0, 404, 0, 0);
    stats_request_done(slot, STATS_PROTOCOL_HTTP1, 0, 405, 0, 0);
    stats_request_done(slot, STATS_PROTOCOL_HTTP2, 1, 404, 7, 0);
    stats_request_done(slot, STATS_PROTOCOL_HTTP2, 1, 100, 0, 0);
    stats_request_done(slot, STATS_PROTOCOL_HTTP2, 1, 599, 0, 0);
    stats_request_done(slot, STATS_PROTOCOL_HTTP2, 1, 600, 0, 0); /* a caller's bug: "other" */
    stats_request_done(slot, STATS_PROTOCOL_HTTP2, 1, 42, 0, 0);
    CHECK(slot->requests[STATS_PROTOCOL_HTTP1][0][stats_status_index(404)] == 1);
    CHECK(slot->requests[STATS_PROTOCOL_HTTP1][0][stats_status_index(405)] == 1);
    CHECK(slot->requests[STATS_PROTOCOL_HTTP2][1][stats_status_index(404)] == 1);
    CHECK(slot->requests[STATS_PROTOCOL_HTTP2][1][0] == 1);
    CHECK(slot->requests[STATS_PROTOCOL_HTTP2][1][STATS_STATUS_OTHER - 1] == 1);
    CHECK(slot->requests[STATS_PROTOCOL_HTTP2][1][STATS_STATUS_OTHER] == 2);
    CHECK(slot->request_body_bytes == 7 && slot->response_body_bytes == 13);
    segment_free(s);
}

static void test_lateness_is_kept_apart_by_arrival(void)
{
    struct stats_segment *s = segment_new(1);
    struct stats_worker_slot *slot = &s->workers[0];
    stats_lateness_record_arrival(slot, STATS_ARRIVAL_KERNEL, 2 * NS_PER_US);
    stats_lateness_record_arrival(slot, STATS_ARRIVAL_HANDLER, 30 * NS_PER_US);
    stats_lateness_record_arrival(slot, STATS_ARRIVAL_HANDLER, 40 * NS_PER_US);
    CHECK(slot->lateness[STATS_ARRIVAL_KERNEL].count == 1);
    CHECK(slot->lateness[STATS_ARRIVAL_HANDLER].count == 2);
    CHECK(slot->lateness[STATS_ARRIVAL_HANDLER].sum_ns == 70 * NS_PER_US);
    segment_free(s);
}

/* One segment with known figures in two workers, rendered both ways. */
static struct stats_segment *segment_with_figures(void)
{
    struct stats_segment *s = segment_new(2);
    struct stats_worker_slot *w0 = &s->workers[0], *w1 = &s->workers[1];
    s->info.delay_ns = 10 * NS_PER_MS;
    s->info.master_pid = getpid();
    w0->pid = getpid(); /* a live process for the process_* figures; worker 1 is "restarting" */
    for (int i = 0; i < 3; i++)
        stats_request_done(w0, STATS_PROTOCOL_HTTP1, 0, 200, 0, 13);
    stats_request_done(w1, STATS_PROTOCOL_HTTP1, 0, 200, 0, 13);
    stats_request_done(w1, STATS_PROTOCOL_HTTP2, 1, 404, 0, 0);
    stats_request_done(w0, STATS_PROTOCOL_HTTP2, 1, 404, 0, 0);
    stats_request_done(w0, STATS_PROTOCOL_HTTP1, 0, 431, 0, 0);
    stats_request_done(w0, STATS_PROTOCOL_HTTP1, 0, 700, 0, 0);
    stats_lateness_record_arrival(w0, STATS_ARRIVAL_KERNEL, 2 * NS_PER_US);
    stats_lateness_record_arrival(w1, STATS_ARRIVAL_KERNEL, 3 * NS_PER_US);
    stats_lateness_record_arrival(w1, STATS_ARRIVAL_HANDLER, 2 * NS_PER_MS);
    stats_applied_delay_record(w0, 10 * NS_PER_MS);
    stats_applied_delay_record(w1, 25 * NS_PER_MS);
    stats_applied_delay_record(w1, 250 * NS_PER_SEC); /* past the last bound: +Inf only */
    stats_request_receive_record(w0, 0);
    stats_request_receive_record(w1, 40 * NS_PER_MS);
    w0->connections_accepted[LISTENER_TLS] = 5;
    w0->connections_closed[LISTENER_TLS] = 2;
    return s;
}

static void test_prometheus_shows_exact_codes_labels_and_histograms(void)
{
    struct stats_segment *s = segment_with_figures();
    char *text = render(s, 1);
    CHECK(contains_line(text, "mockupstream_requests_total{protocol=\"http1\",tls=\"false\",code=\"200\"} 4"));
    CHECK(contains_line(text, "mockupstream_requests_total{protocol=\"http2\",tls=\"true\",code=\"404\"} 2"));
    CHECK(contains_line(text, "mockupstream_requests_total{protocol=\"http1\",tls=\"false\",code=\"431\"} 1"));
    CHECK(contains_line(text, "mockupstream_requests_total{protocol=\"http1\",tls=\"false\",code=\"other\"} 1"));
    /* codes never seen are not rendered */
    CHECK(strstr(text, "code=\"201\"") == NULL);
    CHECK(strstr(text, "protocol=\"http2\",tls=\"false\"") == NULL);

    CHECK(contains_line(text, "mockupstream_delay_lateness_seconds_count{arrival=\"kernel\"} 2"));
    CHECK(contains_line(text, "mockupstream_delay_lateness_seconds_count{arrival=\"handler\"} 1"));
    CHECK(contains_line(text, "mockupstream_delay_lateness_seconds_sum{arrival=\"handler\"} 0.002"));
    CHECK(contains_line(text, "mockupstream_delay_lateness_seconds_bucket{arrival=\"kernel\",le=\"0.000002\"} 1"));
    CHECK(contains_line(text, "mockupstream_delay_lateness_seconds_bucket{arrival=\"kernel\",le=\"0.000003\"} 2"));
    CHECK(contains_line(text, "mockupstream_delay_lateness_seconds_bucket{arrival=\"handler\",le=\"0.0015\"} 0"));
    CHECK(contains_line(text, "mockupstream_delay_lateness_seconds_bucket{arrival=\"handler\",le=\"0.002\"} 1"));
    CHECK(contains_line(text, "mockupstream_delay_lateness_seconds_bucket{arrival=\"handler\",le=\"+Inf\"} 1"));

    CHECK(contains_line(text, "mockupstream_applied_delay_seconds_bucket{le=\"0.008\"} 0"));
    CHECK(contains_line(text, "mockupstream_applied_delay_seconds_bucket{le=\"0.01\"} 1"));
    CHECK(contains_line(text, "mockupstream_applied_delay_seconds_bucket{le=\"0.025\"} 2"));
    CHECK(contains_line(text, "mockupstream_applied_delay_seconds_bucket{le=\"100\"} 2"));
    CHECK(contains_line(text, "mockupstream_applied_delay_seconds_bucket{le=\"+Inf\"} 3"));
    CHECK(contains_line(text, "mockupstream_applied_delay_seconds_sum 250.035"));
    CHECK(contains_line(text, "mockupstream_applied_delay_seconds_count 3"));
    CHECK(contains_line(text, "mockupstream_request_receive_seconds_bucket{le=\"0.000001\"} 1"));
    CHECK(contains_line(text, "mockupstream_request_receive_seconds_bucket{le=\"0.04\"} 2"));
    CHECK(contains_line(text, "mockupstream_request_receive_seconds_count 2"));

    CHECK(contains_line(text, "mockupstream_connections_open{listener=\"tls\"} 3"));
    CHECK(contains_line(text, "mockupstream_config_delay_seconds 0.01"));
    CHECK(contains_line(text, "mockupstream_worker_requests_total{worker=\"0\"} 6"));
    CHECK(contains_line(text, "mockupstream_worker_requests_total{worker=\"1\"} 2"));

    /* process figures: worker 0 and the master are this process; worker 1 has no process */
    char line[128];
    snprintf(line, sizeof(line), "process_max_fds{worker=\"master\"} ");
    CHECK(strstr(text, line) != NULL);
    CHECK(strstr(text, "process_cpu_seconds_total{worker=\"0\"} ") != NULL);
    CHECK(strstr(text, "process_cpu_seconds_total{worker=\"1\"}") == NULL);
    CHECK(strstr(text, "process_open_fds{worker=\"0\"} ") != NULL);
    free(text);
    segment_free(s);
}

/* Every family follows the naming conventions, and every histogram is cumulative with +Inf == count. */
static void test_prometheus_families_follow_the_conventions(void)
{
    struct stats_segment *s = segment_with_figures();
    char *text = render(s, 1);
    int families = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char name[128], type[32];
        if (sscanf(line, "# TYPE %127s %31s", name, type) != 2)
            continue;
        families++;
        size_t len = strlen(name);
        if (strcmp(type, "counter") == 0)
            CHECK(len > 6 && strcmp(name + len - 6, "_total") == 0);
        else
            CHECK(!(len > 6 && strcmp(name + len - 6, "_total") == 0));
        if (strcmp(type, "histogram") == 0)
            CHECK(len > 8 && strcmp(name + len - 8, "_seconds") == 0);
        CHECK(strncmp(name, "mockupstream_", 13) == 0 || strncmp(name, "process_", 8) == 0);
    }
    CHECK(families >= 30);
    free(text);

    /* cumulative buckets: parse one family's bucket values in order */
    text = render(s, 1);
    unsigned long long previous = 0, value, count = 0, inf = 0;
    int buckets = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "mockupstream_applied_delay_seconds_bucket{", 42) == 0) {
            char *space = strrchr(line, ' ');
            value = strtoull(space + 1, NULL, 10);
            CHECK(value >= previous);
            previous = value;
            buckets++;
            if (strstr(line, "le=\"+Inf\"") != NULL)
                inf = value;
        } else if (strncmp(line, "mockupstream_applied_delay_seconds_count ", 41) == 0) {
            count = strtoull(line + 41, NULL, 10);
        }
    }
    CHECK(buckets == STATS_HISTOGRAM_BUCKET_COUNT + 1);
    CHECK(inf == count && count == 3);
    free(text);
    segment_free(s);
}

static void test_json_has_old_keys_and_the_new_ones(void)
{
    struct stats_segment *s = segment_with_figures();
    char *text = render(s, 0);
    CHECK(strstr(text, "\"requests\":{\"total\":8,\"by_protocol\":{\"http1\":6,\"http1_tls\":0,\"http2\":0,\"http2_tls\":2},"
                       "\"by_code\":{\"1xx\":0,\"2xx\":4,\"3xx\":0,\"4xx\":3,\"5xx\":1},"
                       "\"by_status\":{\"200\":4,\"404\":2,\"431\":1,\"other\":1},\"cancelled\":0}") != NULL);
    CHECK(strstr(text, "\"config\":{\"delay\":\"\",\"status\":\"\",\"body_size\":\"\",\"seed\":\"\",\"delay_seconds\":0.01,\"workers\":2,") != NULL);
    CHECK(strstr(text, "\"by_listener\":{\"http\":{\"open\":0,\"accepted\":0,\"closed\":0},\"tls\":{\"open\":3,\"accepted\":5,\"closed\":2}") != NULL);
    /* lateness: both arrivals merged at the top (older readers), then each apart */
    CHECK(strstr(text, "\"lateness\":{\"count\":3,\"sum_seconds\":0.002005,\"max_seconds\":0.002,") != NULL);
    CHECK(strstr(text, "\"by_arrival\":{\"kernel\":{\"count\":2,\"sum_seconds\":0.000005,\"max_seconds\":0.000003,") != NULL);
    CHECK(strstr(text, "\"handler\":{\"count\":1,\"sum_seconds\":0.002,\"max_seconds\":0.002,") != NULL);
    CHECK(strstr(text, "\"applied_delay\":{\"count\":3,\"sum_seconds\":250.035,\"max_seconds\":250,") != NULL);
    CHECK(strstr(text, "{\"le\":0.01,\"count\":1}") != NULL);
    CHECK(strstr(text, "{\"le\":\"+Inf\",\"count\":3}]") != NULL);
    CHECK(strstr(text, "\"request_receive\":{\"count\":2,") != NULL);
    char expect[160];
    snprintf(expect, sizeof(expect), "\"workers\":[{\"index\":0,\"pid\":%d,\"restarts\":0,\"requests\":6,", (int)getpid());
    CHECK(strstr(text, expect) != NULL);
    CHECK(strstr(text, "\"process\":{\"cpu_seconds\":null,\"resident_memory_bytes\":null,") != NULL); /* worker 1 */
    snprintf(expect, sizeof(expect), "\"master\":{\"pid\":%d,\"process\":{\"cpu_seconds\":", (int)getpid());
    CHECK(strstr(text, expect) != NULL);
    free(text);

    /* with no status seen, by_status is an empty object */
    struct stats_segment *empty = segment_new(1);
    text = render(empty, 0);
    CHECK(strstr(text, "\"by_status\":{},") != NULL);
    CHECK(strstr(text, "\"p99_seconds\":null") != NULL);
    free(text);
    segment_free(empty);
    segment_free(s);
}

static void test_json_tree_keeps_order_and_refuses_duplicates(void)
{
    struct stats_json doc;
    stats_json_init(&doc);
    stats_json_put(&doc, "a.x", "1", 1);
    stats_json_put(&doc, "b", "\"s\"", 3);
    stats_json_put(&doc, "a.y.z", "null", 4);
    struct strbuf out;
    strbuf_init(&out);
    stats_json_write(&doc, &out);
    CHECK(!out.failed && strcmp(out.data, "{\"a\":{\"x\":1,\"y\":{\"z\":null}},\"b\":\"s\"}") == 0);
    stats_json_put(&doc, "a.x", "2", 1); /* twice */
    strbuf_clear(&out);
    stats_json_write(&doc, &out);
    CHECK(out.failed);
    stats_json_free(&doc);
    strbuf_free(&out);

    stats_json_init(&doc);
    stats_json_put(&doc, "a", "1", 1);
    stats_json_put(&doc, "a.b", "1", 1); /* through a value */
    CHECK(doc.failed);
    stats_json_free(&doc);
}

static void test_proc_stat_parsing(void)
{
    struct process_metrics m = {0};
    /* comm with spaces and a ')' of its own; fields 14/15 utime/stime, 22 starttime, 23 vsize, 24 rss */
    const char *line = "4242 (a b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 12345 987654 321 "
                       "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
    CHECK(process_metrics_parse_stat(line, 100, 4096, 1000 * NS_PER_SEC, &m) == 0);
    CHECK(m.cpu_ns == 3 * NS_PER_SEC);
    CHECK(m.start_unix_ns == 1000 * NS_PER_SEC + 123450 * NS_PER_MS);
    CHECK(m.virtual_memory_bytes == 987654);
    CHECK(m.resident_memory_bytes == 321 * 4096);
    CHECK(process_metrics_parse_stat("4242 (x) S 1 2 3\n", 100, 4096, 0, &m) == -1);
    CHECK(process_metrics_parse_stat("garbage", 100, 4096, 0, &m) == -1);

    uint64_t max_fds = 1;
    CHECK(process_metrics_parse_limits("Limit Soft Limit Hard Limit Units\nMax processes 63 63 processes\n"
                                       "Max open files            1024                 524288               files     \n",
                                       &max_fds) == 0);
    CHECK(max_fds == 1024);
    CHECK(process_metrics_parse_limits("Max open files            unlimited            unlimited            files\n", &max_fds) == 0);
    CHECK(max_fds == 0);
    CHECK(process_metrics_parse_limits("Max processes 63 63 processes\n", &max_fds) == -1);
}

static void test_process_metrics_of_this_process(void)
{
    uint64_t before_ns = clock_realtime_ns();
    struct process_metrics m;
    CHECK(process_metrics_read(getpid(), &m) == 0);
    CHECK(m.resident_memory_bytes > 0);
    CHECK(m.virtual_memory_bytes >= m.resident_memory_bytes);
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    CHECK(m.max_fds == (uint64_t)limit.rlim_cur);
    /* this test process started a moment ago (clock-tick resolution) */
    CHECK(m.start_unix_ns <= before_ns + 20 * NS_PER_MS);
    CHECK(m.start_unix_ns > before_ns - 600 * NS_PER_SEC);

    /* open descriptors: exactly three more after opening three */
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct process_metrics more;
    CHECK(process_metrics_read(getpid(), &more) == 0);
    CHECK(more.open_fds == m.open_fds + 3);
    for (int i = 0; i < 3; i++)
        close(fds[i]);

    /* CPU time: burn 200 ms of it; /proc must show most of it */
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    volatile uint64_t sink = 0;
    do {
        for (int i = 0; i < 100000; i++)
            sink += (uint64_t)i * 2654435761u;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    } while ((uint64_t)(t1.tv_sec - t0.tv_sec) * NS_PER_SEC + (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec < 200 * NS_PER_MS);
    (void)sink; /* read, so the loop is not optimised away */
    CHECK(process_metrics_read(getpid(), &more) == 0);
    CHECK(more.cpu_ns >= m.cpu_ns + 100 * NS_PER_MS);

    CHECK(process_metrics_read(0, &more) == -1);
    CHECK(process_metrics_read(-5, &more) == -1);
}

int main(void)
{
    RUN(test_bucket_bounds_run_1us_to_100s_ten_per_decade);
    RUN(test_histogram_record_counts_sums_and_keeps_the_max);
    RUN(test_requests_are_counted_by_exact_status);
    RUN(test_lateness_is_kept_apart_by_arrival);
    RUN(test_prometheus_shows_exact_codes_labels_and_histograms);
    RUN(test_prometheus_families_follow_the_conventions);
    RUN(test_json_has_old_keys_and_the_new_ones);
    RUN(test_json_tree_keeps_order_and_refuses_duplicates);
    RUN(test_proc_stat_parsing);
    RUN(test_process_metrics_of_this_process);
    return unit_finish();
}
