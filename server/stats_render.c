#include "stats_render.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"

/* ---- totals over workers ---- */

static const char *const protocol_names[STATS_PROTOCOL_COUNT] = {"http1", "http2"};
static const char *const listener_names[STATS_LISTENER_COUNT] = {"http", "tls", "stats"};
static const char *const code_names[STATS_CODE_CLASS_COUNT] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const violation_names[STATS_VIOLATION_COUNT] = {
    [STATS_VIOLATION_HTTP2_CONNECTION_SPECIFIC_HEADER] = "http2_connection_specific_header",
    [STATS_VIOLATION_HTTP2_TE_NOT_TRAILERS] = "http2_te_not_trailers",
    [STATS_VIOLATION_HTTP2_MISSING_AUTHORITY] = "http2_missing_authority",
    [STATS_VIOLATION_HTTP2_EMPTY_PATH] = "http2_empty_path",
    [STATS_VIOLATION_HTTP2_HEADER_LIST_TOO_LARGE] = "http2_header_list_too_large",
};

/* A snapshot of every counter summed over the running workers' slots. */
struct stats_totals {
    uint64_t requests[STATS_PROTOCOL_COUNT][2][STATS_CODE_CLASS_COUNT];
    uint64_t requests_total, control_requests, requests_cancelled;
    uint64_t protocol_violations[STATS_VIOLATION_COUNT];
    uint64_t held_now, held_peak;
    uint64_t accepted[STATS_LISTENER_COUNT], closed[STATS_LISTENER_COUNT];
    uint64_t fd_exhausted, request_body_bytes, response_body_bytes;
    uint64_t lateness_buckets[STATS_LATENESS_BUCKET_COUNT + 1];
    uint64_t lateness_count, lateness_sum_ns, lateness_max_ns;
};

static uint64_t slot_requests(const struct stats_worker_slot *slot)
{
    uint64_t n = 0;
    for (int p = 0; p < STATS_PROTOCOL_COUNT; p++)
        for (int t = 0; t < 2; t++)
            for (int c = 0; c < STATS_CODE_CLASS_COUNT; c++)
                n += stats_read(&slot->requests[p][t][c]);
    return n;
}

static uint64_t slot_open_connections(const struct stats_worker_slot *slot)
{
    uint64_t open = 0;
    for (int l = 0; l < STATS_LISTENER_COUNT; l++) {
        /* closed is read first: a reader racing the writer never sees more closed than accepted */
        uint64_t closed = stats_read(&slot->connections_closed[l]);
        uint64_t accepted = stats_read(&slot->connections_accepted[l]);
        open += accepted > closed ? accepted - closed : 0;
    }
    return open;
}

static void totals_collect(const struct stats_segment *segment, struct stats_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (uint32_t w = 0; w < segment->info.workers; w++) {
        const struct stats_worker_slot *slot = &segment->workers[w];
        for (int p = 0; p < STATS_PROTOCOL_COUNT; p++)
            for (int tls = 0; tls < 2; tls++)
                for (int c = 0; c < STATS_CODE_CLASS_COUNT; c++) {
                    uint64_t n = stats_read(&slot->requests[p][tls][c]);
                    t->requests[p][tls][c] += n;
                    t->requests_total += n;
                }
        t->control_requests += stats_read(&slot->control_requests);
        t->requests_cancelled += stats_read(&slot->requests_cancelled);
        for (int v = 0; v < STATS_VIOLATION_COUNT; v++)
            t->protocol_violations[v] += stats_read(&slot->protocol_violations[v]);
        t->held_now += stats_read(&slot->held_now);
        t->held_peak += stats_read(&slot->held_peak);
        for (int l = 0; l < STATS_LISTENER_COUNT; l++) {
            uint64_t closed = stats_read(&slot->connections_closed[l]);
            uint64_t accepted = stats_read(&slot->connections_accepted[l]);
            t->closed[l] += closed;
            t->accepted[l] += accepted > closed ? accepted : closed;
        }
        t->fd_exhausted += stats_read(&slot->accept_fd_exhausted);
        t->request_body_bytes += stats_read(&slot->request_body_bytes);
        t->response_body_bytes += stats_read(&slot->response_body_bytes);
        for (int b = 0; b <= STATS_LATENESS_BUCKET_COUNT; b++) {
            uint64_t n = stats_read(&slot->lateness_buckets[b]);
            t->lateness_buckets[b] += n;
            /* the count is the bucket sum, so +Inf always equals _count whatever a writer is doing */
            t->lateness_count += n;
        }
        t->lateness_sum_ns += stats_read(&slot->lateness_sum_ns);
        uint64_t max_ns = stats_read(&slot->lateness_max_ns);
        if (max_ns > t->lateness_max_ns)
            t->lateness_max_ns = max_ns;
    }
}

/* Quantile q of the lateness histogram in seconds, interpolated linearly inside its bucket; a
 * quantile that lands in +Inf (or past the observed max) reports the max. */
static double lateness_quantile_seconds(const struct stats_totals *t, double q)
{
    double rank = q * (double)t->lateness_count;
    uint64_t cumulative = 0;
    for (int b = 0; b < STATS_LATENESS_BUCKET_COUNT; b++) {
        uint64_t n = t->lateness_buckets[b];
        if (n != 0 && (double)(cumulative + n) >= rank) {
            double lower = b == 0 ? 0.0 : (double)stats_lateness_bucket_upper_ns[b - 1];
            double upper = (double)stats_lateness_bucket_upper_ns[b];
            double ns = lower + (upper - lower) * ((rank - (double)cumulative) / (double)n);
            if (ns > (double)t->lateness_max_ns)
                ns = (double)t->lateness_max_ns;
            return ns / NS_PER_SEC;
        }
        cumulative += n;
    }
    return (double)t->lateness_max_ns / NS_PER_SEC;
}

/* Bucket bounds are whole nanoseconds: print them in seconds without float noise (1e-06 -> "0.000001"). */
static void append_seconds_from_ns(struct strbuf *out, uint64_t ns)
{
    char digits[24];
    snprintf(digits, sizeof(digits), "%llu.%09llu", (unsigned long long)(ns / NS_PER_SEC), (unsigned long long)(ns % NS_PER_SEC));
    size_t len = strlen(digits);
    while (digits[len - 1] == '0')
        len--;
    if (digits[len - 1] == '.')
        len--;
    strbuf_append(out, digits, len);
}

static double uptime_seconds(const struct stats_segment *segment)
{
    return (double)(clock_monotonic_ns() - segment->info.start_monotonic_ns) / NS_PER_SEC;
}

/* Label values come from libraries (version strings): escape what the text format requires. */
static void append_label_value(struct strbuf *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            strbuf_appendf(out, "\\%c", *p);
        else if (*p == '\n')
            strbuf_append_str(out, "\\n");
        else
            strbuf_append(out, p, 1);
    }
}

/* JSON strings: the same few characters need escaping, plus control characters. */
static void append_json_string(struct strbuf *out, const char *value)
{
    strbuf_append(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '\\' || *p == '"')
            strbuf_appendf(out, "\\%c", *p);
        else if (*p < 0x20)
            strbuf_appendf(out, "\\u%04x", *p);
        else
            strbuf_append(out, (const char *)p, 1);
    }
    strbuf_append(out, "\"", 1);
}

/* ---- JSON ---- */

void stats_render_json(const struct stats_segment *segment, struct strbuf *out)
{
    const struct stats_process_info *info = &segment->info;
    struct stats_totals t;
    totals_collect(segment, &t);

    strbuf_append_str(out, "{\"version\":");
    append_json_string(out, info->version);
    strbuf_append_str(out, ",\"build\":{\"h2o\":");
    append_json_string(out, info->h2o_version);
    strbuf_append_str(out, ",\"libev\":");
    append_json_string(out, info->libev_version);
    strbuf_append_str(out, ",\"libev_backend\":");
    append_json_string(out, info->libev_backend);
    strbuf_append_str(out, ",\"allocator\":");
    append_json_string(out, info->allocator);
    strbuf_append_str(out, ",\"timer_method\":");
    append_json_string(out, info->timer_method);
    strbuf_appendf(out, "},\"uptime_seconds\":%.3f,\"start_time_seconds\":%.3f", uptime_seconds(segment),
                   (double)info->start_unix_ns / NS_PER_SEC);
    strbuf_appendf(out, ",\"config\":{\"delay_seconds\":%.9g,\"workers\":%u,\"open_file_limit\":%llu}",
                   (double)info->delay_ns / NS_PER_SEC, info->workers, (unsigned long long)info->open_file_limit);

    strbuf_appendf(out, ",\"requests\":{\"total\":%llu,\"by_protocol\":{", (unsigned long long)t.requests_total);
    for (int p = 0; p < STATS_PROTOCOL_COUNT; p++)
        for (int tls = 0; tls < 2; tls++) {
            uint64_t n = 0;
            for (int c = 0; c < STATS_CODE_CLASS_COUNT; c++)
                n += t.requests[p][tls][c];
            strbuf_appendf(out, "%s\"%s%s\":%llu", p || tls ? "," : "", protocol_names[p], tls ? "_tls" : "", (unsigned long long)n);
        }
    strbuf_append_str(out, "},\"by_code\":{");
    for (int c = 0; c < STATS_CODE_CLASS_COUNT; c++) {
        uint64_t n = 0;
        for (int p = 0; p < STATS_PROTOCOL_COUNT; p++)
            n += t.requests[p][0][c] + t.requests[p][1][c];
        strbuf_appendf(out, "%s\"%s\":%llu", c ? "," : "", code_names[c], (unsigned long long)n);
    }
    strbuf_appendf(out, "},\"cancelled\":%llu}", (unsigned long long)t.requests_cancelled);
    strbuf_appendf(out, ",\"control_requests\":%llu", (unsigned long long)t.control_requests);
    strbuf_appendf(out, ",\"held\":{\"now\":%llu,\"peak\":%llu}", (unsigned long long)t.held_now, (unsigned long long)t.held_peak);
    strbuf_append_str(out, ",\"protocol_violations\":{");
    for (int v = 0; v < STATS_VIOLATION_COUNT; v++)
        strbuf_appendf(out, "%s\"%s\":%llu", v ? "," : "", violation_names[v], (unsigned long long)t.protocol_violations[v]);
    strbuf_append_str(out, "}");

    uint64_t accepted = 0, closed = 0;
    for (int l = 0; l < STATS_LISTENER_COUNT; l++) {
        accepted += t.accepted[l];
        closed += t.closed[l];
    }
    strbuf_appendf(out, ",\"connections\":{\"open\":%llu,\"accepted\":%llu,\"closed\":%llu,\"fd_exhausted\":%llu,\"by_listener\":{",
                   (unsigned long long)(accepted - closed), (unsigned long long)accepted, (unsigned long long)closed,
                   (unsigned long long)t.fd_exhausted);
    for (int l = 0; l < STATS_LISTENER_COUNT; l++)
        strbuf_appendf(out, "%s\"%s\":{\"open\":%llu,\"accepted\":%llu,\"closed\":%llu}", l ? "," : "", listener_names[l],
                       (unsigned long long)(t.accepted[l] - t.closed[l]), (unsigned long long)t.accepted[l],
                       (unsigned long long)t.closed[l]);
    strbuf_appendf(out, "}},\"bytes\":{\"request_body\":%llu,\"response_body\":%llu}", (unsigned long long)t.request_body_bytes,
                   (unsigned long long)t.response_body_bytes);

    strbuf_appendf(out, ",\"lateness\":{\"count\":%llu,\"sum_seconds\":%.9f,\"max_seconds\":%.9f", (unsigned long long)t.lateness_count,
                   (double)t.lateness_sum_ns / NS_PER_SEC, (double)t.lateness_max_ns / NS_PER_SEC);
    static const struct {
        const char *name;
        double q;
    } quantiles[] = {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}};
    for (size_t i = 0; i < sizeof(quantiles) / sizeof(quantiles[0]); i++) {
        if (t.lateness_count == 0)
            strbuf_appendf(out, ",\"%s_seconds\":null", quantiles[i].name);
        else
            strbuf_appendf(out, ",\"%s_seconds\":%.9f", quantiles[i].name, lateness_quantile_seconds(&t, quantiles[i].q));
    }
    strbuf_append_str(out, ",\"buckets\":[");
    uint64_t cumulative = 0;
    for (int b = 0; b <= STATS_LATENESS_BUCKET_COUNT; b++) {
        cumulative += t.lateness_buckets[b];
        strbuf_append_str(out, b ? ",{\"le\":" : "{\"le\":");
        if (b == STATS_LATENESS_BUCKET_COUNT)
            strbuf_append_str(out, "\"+Inf\"");
        else
            append_seconds_from_ns(out, stats_lateness_bucket_upper_ns[b]);
        strbuf_appendf(out, ",\"count\":%llu}", (unsigned long long)cumulative);
    }
    strbuf_append_str(out, "]},\"workers\":[");
    for (uint32_t w = 0; w < info->workers; w++) {
        const struct stats_worker_slot *slot = &segment->workers[w];
        strbuf_appendf(out,
                       "%s{\"index\":%u,\"pid\":%lld,\"restarts\":%llu,\"requests\":%llu,\"control_requests\":%llu,"
                       "\"connections_open\":%llu,\"held_now\":%llu,\"held_peak\":%llu}",
                       w ? "," : "", w, (long long)__atomic_load_n(&slot->pid, __ATOMIC_RELAXED),
                       (unsigned long long)stats_read(&slot->restarts), (unsigned long long)slot_requests(slot),
                       (unsigned long long)stats_read(&slot->control_requests), (unsigned long long)slot_open_connections(slot),
                       (unsigned long long)stats_read(&slot->held_now), (unsigned long long)stats_read(&slot->held_peak));
    }
    strbuf_append_str(out, "]}\n");
}

/* ---- Prometheus ---- */

/* Families whose single sample is a plain number from the totals or the process info. */
enum value_kind { VALUE_COUNTER, VALUE_GAUGE };

struct scalar_metric {
    const char *name;
    const char *help;
    enum value_kind kind;
    double (*value)(const struct stats_segment *segment, const struct stats_totals *t);
};

static double start_time_value(const struct stats_segment *s, const struct stats_totals *t)
{
    return (double)s->info.start_unix_ns / NS_PER_SEC;
}
static double uptime_value(const struct stats_segment *s, const struct stats_totals *t)
{
    return uptime_seconds(s);
}
static double delay_value(const struct stats_segment *s, const struct stats_totals *t)
{
    return (double)s->info.delay_ns / NS_PER_SEC;
}
static double workers_value(const struct stats_segment *s, const struct stats_totals *t)
{
    return s->info.workers;
}
static double open_file_limit_value(const struct stats_segment *s, const struct stats_totals *t)
{
    return (double)s->info.open_file_limit;
}
static double control_value(const struct stats_segment *s, const struct stats_totals *t)
{
    return (double)t->control_requests;
}
static double cancelled_value(const struct stats_segment *s, const struct stats_totals *t)
{
    return (double)t->requests_cancelled;
}
static double held_value(const struct stats_segment *s, const struct stats_totals *t)
{
    return (double)t->held_now;
}
static double fd_exhausted_value(const struct stats_segment *s, const struct stats_totals *t)
{
    return (double)t->fd_exhausted;
}
static double request_bytes_value(const struct stats_segment *s, const struct stats_totals *t)
{
    return (double)t->request_body_bytes;
}
static double response_bytes_value(const struct stats_segment *s, const struct stats_totals *t)
{
    return (double)t->response_body_bytes;
}

static const struct scalar_metric scalar_metrics[] = {
    {"mockupstream_start_time_seconds", "Start time of the server since the Unix epoch.", VALUE_GAUGE, start_time_value},
    {"mockupstream_uptime_seconds", "Seconds since the server started.", VALUE_GAUGE, uptime_value},
    {"mockupstream_config_delay_seconds", "Configured default delay (--delay).", VALUE_GAUGE, delay_value},
    {"mockupstream_workers", "Configured worker processes.", VALUE_GAUGE, workers_value},
    {"mockupstream_open_file_limit", "Open-file limit of the server processes.", VALUE_GAUGE, open_file_limit_value},
    {"mockupstream_control_requests_total", "Requests to /stats, /metrics and /healthz (not in requests_total).",
     VALUE_COUNTER, control_value},
    {"mockupstream_requests_cancelled_total", "Held requests whose client went away before the response.", VALUE_COUNTER,
     cancelled_value},
    {"mockupstream_held_requests", "Requests waiting for their delay now.", VALUE_GAUGE, held_value},
    {"mockupstream_accept_fd_exhausted_total", "accept() failures for lack of file descriptors.", VALUE_COUNTER,
     fd_exhausted_value},
    {"mockupstream_request_body_bytes_total", "Request body bytes received.", VALUE_COUNTER, request_bytes_value},
    {"mockupstream_response_body_bytes_total", "Response body bytes sent.", VALUE_COUNTER, response_bytes_value},
};

/* Per-worker families: one sample per worker slot. */
struct worker_metric {
    const char *name;
    const char *help;
    enum value_kind kind;
    uint64_t (*value)(const struct stats_worker_slot *slot);
};

static uint64_t worker_held(const struct stats_worker_slot *slot)
{
    return stats_read(&slot->held_now);
}
static uint64_t worker_held_peak(const struct stats_worker_slot *slot)
{
    return stats_read(&slot->held_peak);
}
static uint64_t worker_restarts(const struct stats_worker_slot *slot)
{
    return stats_read(&slot->restarts);
}
static uint64_t worker_pid(const struct stats_worker_slot *slot)
{
    return (uint64_t)__atomic_load_n(&slot->pid, __ATOMIC_RELAXED);
}

static const struct worker_metric worker_metrics[] = {
    {"mockupstream_worker_requests_total", "Benchmark requests completed by each worker.", VALUE_COUNTER, slot_requests},
    {"mockupstream_worker_connections_open", "Open connections of each worker.", VALUE_GAUGE, slot_open_connections},
    {"mockupstream_worker_held_requests", "Requests each worker holds now.", VALUE_GAUGE, worker_held},
    {"mockupstream_worker_held_requests_peak", "Most requests each worker has held at once.", VALUE_GAUGE, worker_held_peak},
    {"mockupstream_worker_restarts_total", "Times the master restarted each worker.", VALUE_COUNTER, worker_restarts},
    {"mockupstream_worker_pid", "Process id of each worker (0 while it restarts).", VALUE_GAUGE, worker_pid},
};

static void family_header(struct strbuf *out, const char *name, const char *help, const char *type)
{
    strbuf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *kind_name(enum value_kind kind)
{
    return kind == VALUE_COUNTER ? "counter" : "gauge";
}

void stats_render_prometheus(const struct stats_segment *segment, struct strbuf *out)
{
    const struct stats_process_info *info = &segment->info;
    struct stats_totals t;
    totals_collect(segment, &t);

    family_header(out, "mockupstream_build_info", "Versions of mockupstream and the libraries it runs on.", "gauge");
    const struct {
        const char *label;
        const char *value;
    } build_labels[] = {{"version", info->version},           {"h2o", info->h2o_version},
                        {"libev", info->libev_version},        {"libev_backend", info->libev_backend},
                        {"allocator", info->allocator},        {"timer_method", info->timer_method}};
    strbuf_append_str(out, "mockupstream_build_info{");
    for (size_t i = 0; i < sizeof(build_labels) / sizeof(build_labels[0]); i++) {
        strbuf_appendf(out, "%s%s=\"", i ? "," : "", build_labels[i].label);
        append_label_value(out, build_labels[i].value);
        strbuf_append_str(out, "\"");
    }
    strbuf_append_str(out, "} 1\n");

    for (size_t i = 0; i < sizeof(scalar_metrics) / sizeof(scalar_metrics[0]); i++) {
        const struct scalar_metric *m = &scalar_metrics[i];
        family_header(out, m->name, m->help, kind_name(m->kind));
        double v = m->value(segment, &t);
        /* counters and counts print as integers, times with microseconds and no float noise */
        if (v == (double)(uint64_t)v)
            strbuf_appendf(out, "%s %llu\n", m->name, (unsigned long long)v);
        else
            strbuf_appendf(out, "%s %.6f\n", m->name, v);
    }

    family_header(out, "mockupstream_requests_total", "Benchmark requests completed, by protocol, TLS and status class.",
                  "counter");
    for (int p = 0; p < STATS_PROTOCOL_COUNT; p++)
        for (int tls = 0; tls < 2; tls++)
            for (int c = 0; c < STATS_CODE_CLASS_COUNT; c++)
                strbuf_appendf(out, "mockupstream_requests_total{protocol=\"%s\",tls=\"%s\",code=\"%s\"} %llu\n", protocol_names[p],
                               tls ? "true" : "false", code_names[c], (unsigned long long)t.requests[p][tls][c]);

    family_header(out, "mockupstream_protocol_violations_total",
                  "Requests that broke a protocol rule, by kind (served anyway, or refused on that request alone).", "counter");
    for (int v = 0; v < STATS_VIOLATION_COUNT; v++)
        strbuf_appendf(out, "mockupstream_protocol_violations_total{kind=\"%s\"} %llu\n", violation_names[v],
                       (unsigned long long)t.protocol_violations[v]);

    const struct {
        const char *name;
        const char *help;
        enum value_kind kind;
        int which; /* 0 open, 1 accepted, 2 closed */
    } connection_families[] = {
        {"mockupstream_connections_open", "Open connections, by listener.", VALUE_GAUGE, 0},
        {"mockupstream_connections_accepted_total", "Connections accepted, by listener.", VALUE_COUNTER, 1},
        {"mockupstream_connections_closed_total", "Connections closed, by listener.", VALUE_COUNTER, 2},
    };
    for (size_t f = 0; f < sizeof(connection_families) / sizeof(connection_families[0]); f++) {
        family_header(out, connection_families[f].name, connection_families[f].help, kind_name(connection_families[f].kind));
        for (int l = 0; l < STATS_LISTENER_COUNT; l++) {
            uint64_t v = connection_families[f].which == 0   ? t.accepted[l] - t.closed[l]
                         : connection_families[f].which == 1 ? t.accepted[l]
                                                              : t.closed[l];
            strbuf_appendf(out, "%s{listener=\"%s\"} %llu\n", connection_families[f].name, listener_names[l], (unsigned long long)v);
        }
    }

    family_header(out, "mockupstream_delay_lateness_seconds",
                  "Time a delayed response was handed to the socket minus the time it was due.", "histogram");
    uint64_t cumulative = 0;
    for (int b = 0; b <= STATS_LATENESS_BUCKET_COUNT; b++) {
        cumulative += t.lateness_buckets[b];
        strbuf_append_str(out, "mockupstream_delay_lateness_seconds_bucket{le=\"");
        if (b == STATS_LATENESS_BUCKET_COUNT)
            strbuf_append_str(out, "+Inf");
        else
            append_seconds_from_ns(out, stats_lateness_bucket_upper_ns[b]);
        strbuf_appendf(out, "\"} %llu\n", (unsigned long long)cumulative);
    }
    strbuf_appendf(out, "mockupstream_delay_lateness_seconds_sum %.9f\nmockupstream_delay_lateness_seconds_count %llu\n",
                   (double)t.lateness_sum_ns / NS_PER_SEC, (unsigned long long)t.lateness_count);

    for (size_t i = 0; i < sizeof(worker_metrics) / sizeof(worker_metrics[0]); i++) {
        const struct worker_metric *m = &worker_metrics[i];
        family_header(out, m->name, m->help, kind_name(m->kind));
        for (uint32_t w = 0; w < info->workers; w++)
            strbuf_appendf(out, "%s{worker=\"%u\"} %llu\n", m->name, w, (unsigned long long)m->value(&segment->workers[w]));
    }
}
