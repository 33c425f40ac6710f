#include "stats_render.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "stats_json.h"
#include "stats_snapshot.h"
#include "stats_table.h"

/* ---- formatting ---- */

/* Numbers are formatted by hand: a scrape prints about a thousand of them, and snprintf was half of
 * its CPU time. Buffers hold at least FORMAT_MAX_BYTES. */
#define FORMAT_MAX_BYTES 32

/* Decimal digits of v, NUL-terminated; returns the length. */
static size_t format_u64(uint64_t v, char *buf)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = digits[n - 1 - i];
    buf[n] = '\0';
    return n;
}

/* Nanoseconds as seconds, exactly and without float noise (1000 -> "0.000001", 10^9 -> "1"). */
static size_t format_seconds_from_ns(uint64_t ns, char *buf)
{
    size_t len = format_u64(ns / NS_PER_SEC, buf);
    uint64_t fraction = ns % NS_PER_SEC;
    if (fraction == 0)
        return len;
    buf[len++] = '.';
    for (uint64_t unit = NS_PER_SEC / 10; fraction != 0; unit /= 10) {
        buf[len++] = (char)('0' + fraction / unit);
        fraction %= unit;
    }
    buf[len] = '\0';
    return len;
}

static size_t format_value(enum stats_metric_unit unit, uint64_t v, char *buf)
{
    return unit == STATS_UNIT_NS ? format_seconds_from_ns(v, buf) : format_u64(v, buf);
}

/* A render: the snapshot it prints, and the histogram bounds formatted once for all histograms. */
struct render {
    struct stats_snapshot snap;
    char le[STATS_HISTOGRAM_BUCKET_COUNT + 1][FORMAT_MAX_BYTES]; /* in seconds, "+Inf" last */
};

static int render_init(struct render *r, const struct stats_segment *segment)
{
    for (int b = 0; b < STATS_HISTOGRAM_BUCKET_COUNT; b++)
        format_seconds_from_ns(stats_histogram_bucket_upper_ns[b], r->le[b]);
    memcpy(r->le[STATS_HISTOGRAM_BUCKET_COUNT], "+Inf", sizeof("+Inf"));
    return stats_snapshot_take(&r->snap, segment);
}

/* Quantile q of a histogram in seconds, interpolated linearly inside its bucket; a quantile that lands
 * in +Inf (or past the observed max) reports the max. */
static double histogram_quantile_seconds(const struct stats_histogram *h, double q)
{
    double rank = q * (double)h->count;
    uint64_t cumulative = 0;
    for (int b = 0; b < STATS_HISTOGRAM_BUCKET_COUNT; b++) {
        uint64_t n = h->buckets[b];
        if (n != 0 && (double)(cumulative + n) >= rank) {
            double lower = b == 0 ? 0.0 : (double)stats_histogram_bucket_upper_ns[b - 1];
            double upper = (double)stats_histogram_bucket_upper_ns[b];
            double ns = lower + (upper - lower) * ((rank - (double)cumulative) / (double)n);
            if (ns > (double)h->max_ns)
                ns = (double)h->max_ns;
            return ns / NS_PER_SEC;
        }
        cumulative += n;
    }
    return (double)h->max_ns / NS_PER_SEC;
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

/* A bounded, NUL-terminated string field of the process info. */
static const char *info_string(const struct stats_process_info *info, size_t offset, char *buf, size_t size)
{
    snprintf(buf, size, "%s", (const char *)info + offset);
    return buf;
}

/* ---- JSON ---- */

static void json_put_text(struct stats_json *doc, const char *path, const char *value)
{
    stats_json_put(doc, path, value, strlen(value));
}

/* Replaces the "{}" in `path` by `key`. */
static void expand_path(const char *path, const char *key, char *buf, size_t size)
{
    const char *mark = strstr(path, "{}");
    if (mark == NULL)
        snprintf(buf, size, "%s", path);
    else
        snprintf(buf, size, "%.*s%s%s", (int)(mark - path), path, key, mark + 2);
}

static void json_put_histogram(struct stats_json *doc, const struct render *r, const char *path, const struct stats_histogram *h,
                               struct strbuf *scratch)
{
    char key[192], value[FORMAT_MAX_BYTES];
    snprintf(key, sizeof(key), "%s.count", path);
    format_u64(h->count, value);
    json_put_text(doc, key, value);
    snprintf(key, sizeof(key), "%s.sum_seconds", path);
    format_seconds_from_ns(h->sum_ns, value);
    json_put_text(doc, key, value);
    snprintf(key, sizeof(key), "%s.max_seconds", path);
    format_seconds_from_ns(h->max_ns, value);
    json_put_text(doc, key, value);
    static const struct {
        const char *name;
        double q;
    } quantiles[] = {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}};
    for (size_t i = 0; i < sizeof(quantiles) / sizeof(quantiles[0]); i++) {
        snprintf(key, sizeof(key), "%s.%s_seconds", path, quantiles[i].name);
        if (h->count == 0)
            snprintf(value, sizeof(value), "null");
        else
            snprintf(value, sizeof(value), "%.9f", histogram_quantile_seconds(h, quantiles[i].q));
        json_put_text(doc, key, value);
    }
    strbuf_clear(scratch);
    strbuf_append_str(scratch, "[");
    uint64_t cumulative = 0;
    for (int b = 0; b <= STATS_HISTOGRAM_BUCKET_COUNT; b++) {
        cumulative += h->buckets[b];
        strbuf_append_str(scratch, b ? ",{\"le\":" : "{\"le\":");
        if (b == STATS_HISTOGRAM_BUCKET_COUNT)
            strbuf_append_str(scratch, "\"+Inf\"");
        else
            strbuf_append_str(scratch, r->le[b]);
        strbuf_append_str(scratch, ",\"count\":");
        strbuf_append(scratch, value, format_u64(cumulative, value));
        strbuf_append_str(scratch, "}");
    }
    strbuf_append_str(scratch, "]");
    snprintf(key, sizeof(key), "%s.buckets", path);
    if (!scratch->failed)
        stats_json_put(doc, key, scratch->data, scratch->len);
    else
        doc->failed = true;
}

/* The figures of every metric of `scope` into `doc`; `w` is the worker (or process) index, -1 for the
 * server-wide figures. */
static void json_put_metrics(struct stats_json *doc, const struct render *r, enum stats_metric_scope scope, long w,
                             uint64_t *acc, struct stats_histogram *hacc, struct strbuf *scratch)
{
    char key[64], path[128], value[FORMAT_MAX_BYTES];
    for (size_t i = 0; i < stats_metric_count; i++) {
        const struct stats_metric *m = &stats_metrics[i];
        if (m->json_path == NULL || m->scope != scope)
            continue;
        if (scope == STATS_SCOPE_PROCESS) {
            if (r->snap.process_present[w])
                format_value(m->unit, stats_snapshot_process_value(&r->snap, m, (uint32_t)w), value);
            else
                snprintf(value, sizeof(value), "null");
            json_put_text(doc, m->json_path, value);
            continue;
        }
        size_t groups = stats_view_group_count(m->view, m->count);
        if (m->type == STATS_METRIC_HISTOGRAM) {
            stats_snapshot_histograms(&r->snap, m, hacc);
            for (size_t g = 0; g < groups; g++) {
                stats_view_json_key(m->view, g, key, sizeof(key));
                expand_path(m->json_path, key, path, sizeof(path));
                json_put_histogram(doc, r, path, &hacc[g], scratch);
            }
            continue;
        }
        stats_snapshot_values(&r->snap, m, w, acc);
        for (size_t g = 0; g < groups; g++) {
            if (acc[g] == 0 && stats_view_is_sparse(m->view))
                continue;
            stats_view_json_key(m->view, g, key, sizeof(key));
            expand_path(m->json_path, key, path, sizeof(path));
            format_value(m->unit, acc[g], value);
            json_put_text(doc, path, value);
        }
        if (stats_view_is_sparse(m->view)) {
            /* an object with no code seen yet is still an object */
            expand_path(m->json_path, "", path, sizeof(path));
            path[strlen(path) - 1] = '\0'; /* drop the trailing '.' */
            bool any = false;
            for (size_t g = 0; g < groups && !any; g++)
                any = acc[g] != 0;
            if (!any)
                json_put_text(doc, path, "{}");
        }
    }
}

/* A sub-document (a worker, the master) written as a JSON fragment into `out`. */
static void json_put_process_object(const struct render *r, long w, int64_t pid, bool with_slot, uint64_t *acc,
                                    struct stats_histogram *hacc, struct strbuf *scratch, struct strbuf *out)
{
    struct stats_json doc;
    stats_json_init(&doc);
    char value[32];
    if (with_slot) {
        snprintf(value, sizeof(value), "%ld", w);
        json_put_text(&doc, "index", value);
        json_put_metrics(&doc, r, STATS_SCOPE_WORKER, w, acc, hacc, scratch);
    } else {
        snprintf(value, sizeof(value), "%lld", (long long)pid);
        json_put_text(&doc, "pid", value);
    }
    json_put_metrics(&doc, r, STATS_SCOPE_PROCESS, w, acc, hacc, scratch);
    stats_json_write(&doc, out);
    stats_json_free(&doc);
}

void stats_render_json(const struct stats_segment *segment, struct strbuf *out)
{
    struct render render_storage, *r = &render_storage;
    uint64_t *acc = malloc(STATS_VIEW_MAX_GROUPS * sizeof(*acc));
    struct stats_histogram *hacc = malloc(STATS_VIEW_MAX_HISTOGRAM_GROUPS * sizeof(*hacc));
    struct strbuf scratch, fragment;
    struct stats_json doc;
    strbuf_init(&scratch);
    strbuf_init(&fragment);
    stats_json_init(&doc);
    if (render_init(r, segment) != 0 || acc == NULL || hacc == NULL) {
        out->failed = true;
        goto done;
    }

    char text[STATS_SPEC_TEXT_BYTES];
    for (size_t i = 0; i < stats_build_field_count; i++) {
        strbuf_clear(&scratch);
        append_json_string(&scratch, info_string(&segment->info, stats_build_fields[i].offset, text, sizeof(text)));
        stats_json_put(&doc, stats_build_fields[i].json_path, scratch.data, scratch.len);
    }
    for (size_t i = 0; i < stats_config_field_count; i++) {
        strbuf_clear(&scratch);
        append_json_string(&scratch, info_string(&segment->info, stats_config_fields[i].offset, text, sizeof(text)));
        stats_json_put(&doc, stats_config_fields[i].json_path, scratch.data, scratch.len);
    }
    json_put_metrics(&doc, r, STATS_SCOPE_SERVER, -1, acc, hacc, &scratch);

    strbuf_append_str(&fragment, "[");
    for (uint32_t w = 0; w < r->snap.workers; w++) {
        if (w)
            strbuf_append_str(&fragment, ",");
        json_put_process_object(r, w, 0, true, acc, hacc, &scratch, &fragment);
    }
    strbuf_append_str(&fragment, "]");
    stats_json_put(&doc, "workers", fragment.data, fragment.len);
    strbuf_clear(&fragment);
    json_put_process_object(r, r->snap.workers, segment->info.master_pid, false, acc, hacc, &scratch, &fragment);
    stats_json_put(&doc, "master", fragment.data, fragment.len);
    if (scratch.failed || fragment.failed)
        doc.failed = true;

    stats_json_write(&doc, out);
    strbuf_append_str(out, "\n");
done:
    stats_snapshot_release(&r->snap);
    stats_json_free(&doc);
    strbuf_free(&scratch);
    strbuf_free(&fragment);
    free(acc);
    free(hacc);
}

/* ---- Prometheus ---- */

static const char *type_name(enum stats_metric_type type)
{
    switch (type) {
    case STATS_METRIC_COUNTER: return "counter";
    case STATS_METRIC_GAUGE: return "gauge";
    case STATS_METRIC_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

/* One sample line: name+suffix{labels,le="..."} value */
static void prom_sample(struct strbuf *out, const char *name, const char *suffix, const char *labels, const char *le,
                        const char *value)
{
    strbuf_append_str(out, name);
    strbuf_append_str(out, suffix);
    if (labels[0] != '\0' || le != NULL) {
        strbuf_append_str(out, "{");
        strbuf_append_str(out, labels);
        if (le != NULL) {
            strbuf_append_str(out, labels[0] != '\0' ? ",le=\"" : "le=\"");
            strbuf_append_str(out, le);
            strbuf_append_str(out, "\"");
        }
        strbuf_append_str(out, "}");
    }
    strbuf_append_str(out, " ");
    strbuf_append_str(out, value);
    strbuf_append_str(out, "\n");
}

static void prom_histogram(struct strbuf *out, const struct render *r, const char *name, const char *labels,
                           const struct stats_histogram *h)
{
    char value[FORMAT_MAX_BYTES];
    uint64_t cumulative = 0;
    for (int b = 0; b <= STATS_HISTOGRAM_BUCKET_COUNT; b++) {
        cumulative += h->buckets[b];
        format_u64(cumulative, value);
        prom_sample(out, name, "_bucket", labels, r->le[b], value);
    }
    format_seconds_from_ns(h->sum_ns, value);
    prom_sample(out, name, "_sum", labels, NULL, value);
    format_u64(h->count, value);
    prom_sample(out, name, "_count", labels, NULL, value);
}

void stats_render_prometheus(const struct stats_segment *segment, struct strbuf *out)
{
    struct render render_storage, *r = &render_storage;
    uint64_t *acc = malloc(STATS_VIEW_MAX_GROUPS * sizeof(*acc));
    struct stats_histogram *hacc = malloc(STATS_VIEW_MAX_HISTOGRAM_GROUPS * sizeof(*hacc));
    if (render_init(r, segment) != 0 || acc == NULL || hacc == NULL) {
        out->failed = true;
        goto done;
    }

    strbuf_append_str(out, "# HELP mockupstream_build_info Versions of mockupstream and the libraries it runs on.\n"
                           "# TYPE mockupstream_build_info gauge\nmockupstream_build_info{");
    char text[STATS_SPEC_TEXT_BYTES];
    for (size_t i = 0; i < stats_build_field_count; i++) {
        strbuf_appendf(out, "%s%s=\"", i ? "," : "", stats_build_fields[i].label);
        append_label_value(out, info_string(&segment->info, stats_build_fields[i].offset, text, sizeof(text)));
        strbuf_append_str(out, "\"");
    }
    strbuf_append_str(out, "} 1\n");
    strbuf_append_str(out, "# HELP mockupstream_config_info The delay, status and body size every benchmark answer is drawn "
                           "from (--delay, --status, --body-size) and the --seed of the draws.\n"
                           "# TYPE mockupstream_config_info gauge\nmockupstream_config_info{");
    for (size_t i = 0; i < stats_config_field_count; i++) {
        strbuf_appendf(out, "%s%s=\"", i ? "," : "", stats_config_fields[i].label);
        append_label_value(out, info_string(&segment->info, stats_config_fields[i].offset, text, sizeof(text)));
        strbuf_append_str(out, "\"");
    }
    strbuf_append_str(out, "} 1\n");

    char labels[160], view_part[128], value[FORMAT_MAX_BYTES];
    for (size_t i = 0; i < stats_metric_count; i++) {
        const struct stats_metric *m = &stats_metrics[i];
        if (m->name == NULL)
            continue;
        strbuf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, type_name(m->type));
        size_t groups = stats_view_group_count(m->view, m->count);
        switch (m->scope) {
        case STATS_SCOPE_SERVER:
            if (m->type == STATS_METRIC_HISTOGRAM) {
                stats_snapshot_histograms(&r->snap, m, hacc);
                for (size_t g = 0; g < groups; g++) {
                    stats_view_labels(m->view, g, labels, sizeof(labels));
                    prom_histogram(out, r, m->name, labels, &hacc[g]);
                }
                break;
            }
            stats_snapshot_values(&r->snap, m, -1, acc);
            for (size_t g = 0; g < groups; g++) {
                if (acc[g] == 0 && stats_view_is_sparse(m->view))
                    continue;
                stats_view_labels(m->view, g, labels, sizeof(labels));
                format_value(m->unit, acc[g], value);
                prom_sample(out, m->name, "", labels, NULL, value);
            }
            break;
        case STATS_SCOPE_WORKER:
            for (uint32_t w = 0; w < r->snap.workers; w++) {
                stats_snapshot_values(&r->snap, m, w, acc);
                for (size_t g = 0; g < groups; g++) {
                    stats_view_labels(m->view, g, view_part, sizeof(view_part));
                    snprintf(labels, sizeof(labels), "worker=\"%u\"%s%s", w, view_part[0] ? "," : "", view_part);
                    format_value(m->unit, acc[g], value);
                    prom_sample(out, m->name, "", labels, NULL, value);
                }
            }
            break;
        case STATS_SCOPE_PROCESS:
            for (uint32_t p = 0; p <= r->snap.workers; p++) {
                if (!r->snap.process_present[p])
                    continue;
                if (p < r->snap.workers)
                    snprintf(labels, sizeof(labels), "worker=\"%u\"", p);
                else
                    snprintf(labels, sizeof(labels), "worker=\"master\"");
                format_value(m->unit, stats_snapshot_process_value(&r->snap, m, p), value);
                prom_sample(out, m->name, "", labels, NULL, value);
            }
            break;
        }
    }
done:
    stats_snapshot_release(&r->snap);
    free(acc);
    free(hacc);
}
