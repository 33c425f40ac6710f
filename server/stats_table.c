#include "stats_table.h"

#include <stdio.h>

#include "clock.h"
#include "process_metrics.h"

/* ---- label values ---- */

static const char *const protocol_names[STATS_PROTOCOL_COUNT] = {"http1", "http2"};
static const char *const listener_names[LISTENER_KIND_COUNT] = {"http", "tls", "stats"};
static const char *const arrival_names[STATS_ARRIVAL_COUNT] = {"kernel", "handler"};
static const char *const violation_names[STATS_VIOLATION_COUNT] = {
    [STATS_VIOLATION_HTTP2_CONNECTION_SPECIFIC_HEADER] = "http2_connection_specific_header",
    [STATS_VIOLATION_HTTP2_TE_NOT_TRAILERS] = "http2_te_not_trailers",
    [STATS_VIOLATION_HTTP2_MISSING_AUTHORITY] = "http2_missing_authority",
    [STATS_VIOLATION_HTTP2_EMPTY_PATH] = "http2_empty_path",
    [STATS_VIOLATION_HTTP2_HEADER_LIST_TOO_LARGE] = "http2_header_list_too_large",
};
static const char *const fault_names[STATS_FAULT_KINDS] = {"reset", "close", "hang", "partial", "garbage"};
static const char *const close_reason_names[STATS_CLOSE_REASON_COUNT] = {
    [STATS_CLOSE_CLIENT] = "client", [STATS_CLOSE_IDLE] = "idle", [STATS_CLOSE_REQUEST_TIMEOUT] = "request_timeout",
    [STATS_CLOSE_MAX_REQUESTS] = "max_requests", [STATS_CLOSE_MAX_AGE] = "max_age", [STATS_CLOSE_DRAIN] = "drain",
    [STATS_CLOSE_FAULT] = "fault", [STATS_CLOSE_PROTOCOL_ERROR] = "protocol_error", [STATS_CLOSE_OTHER] = "other",
};
#define CODE_CLASS_COUNT 5
static const char *const class_names[CODE_CLASS_COUNT] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

/* ---- the table: every figure of /stats and /metrics, described once ---- */

#define SLOT_FIELD(field)                                                                                              \
    .source = STATS_SOURCE_SLOT, .offset = offsetof(struct stats_worker_slot, field),                                  \
    .count = sizeof(((struct stats_worker_slot *)0)->field) / sizeof(uint64_t)
#define SLOT_DERIVED(fn, n) .source = STATS_SOURCE_SLOT, .slot_value = (fn), .count = (n)
#define SLOT_HISTOGRAMS(field)                                                                                         \
    .source = STATS_SOURCE_HISTOGRAM, .offset = offsetof(struct stats_worker_slot, field),                             \
    .count = sizeof(((struct stats_worker_slot *)0)->field) / sizeof(struct stats_histogram)
#define INFO(fn) .source = STATS_SOURCE_INFO, .info_value = (fn), .count = 1
#define PROCESS(field) .source = STATS_SOURCE_PROCESS, .offset = offsetof(struct process_metrics, field), .count = 1

/* Connections: the snapshot copies a slot's accepted counters before its closed ones, so a connection
 * accepted and closed between the two reads can show as closed and not accepted: clamp. */
static uint64_t slot_connections_open(const struct stats_worker_slot *slot, size_t listener)
{
    uint64_t closed = stats_read(&slot->connections_closed[listener]);
    uint64_t accepted = stats_read(&slot->connections_accepted[listener]);
    return accepted > closed ? accepted - closed : 0;
}
static uint64_t slot_connections_accepted(const struct stats_worker_slot *slot, size_t listener)
{
    uint64_t closed = stats_read(&slot->connections_closed[listener]);
    uint64_t accepted = stats_read(&slot->connections_accepted[listener]);
    return accepted > closed ? accepted : closed;
}
static uint64_t slot_pid(const struct stats_worker_slot *slot, size_t i)
{
    int64_t pid = __atomic_load_n(&slot->pid, __ATOMIC_RELAXED);
    return pid > 0 ? (uint64_t)pid : 0;
}

static uint64_t info_start_time_ns(const struct stats_segment *s)
{
    return s->info.start_unix_ns;
}
static uint64_t info_uptime_ns(const struct stats_segment *s)
{
    return clock_monotonic_ns() - s->info.start_monotonic_ns;
}
static uint64_t info_delay_ns(const struct stats_segment *s)
{
    return s->info.delay_ns;
}
static uint64_t info_workers(const struct stats_segment *s)
{
    return s->info.workers;
}
static uint64_t info_open_file_limit(const struct stats_segment *s)
{
    return s->info.open_file_limit;
}

/* In this order in both documents. */
const struct stats_metric stats_metrics[] = {
    {"mockupstream_uptime_seconds", "Seconds since the server started.", "uptime_seconds", STATS_METRIC_GAUGE, STATS_UNIT_NS, STATS_SCOPE_SERVER,
     STATS_VIEW_NONE, INFO(info_uptime_ns)},
    {"mockupstream_start_time_seconds", "Start time of the server since the Unix epoch.", "start_time_seconds", STATS_METRIC_GAUGE,
     STATS_UNIT_NS, STATS_SCOPE_SERVER, STATS_VIEW_NONE, INFO(info_start_time_ns)},
    {"mockupstream_config_delay_seconds", "Configured delay (--delay) when it is one value; with a list or distribution, what a list's rest gets (see config_info).", "config.delay_seconds", STATS_METRIC_GAUGE, STATS_UNIT_NS,
     STATS_SCOPE_SERVER, STATS_VIEW_NONE, INFO(info_delay_ns)},
    {"mockupstream_workers", "Configured worker processes.", "config.workers", STATS_METRIC_GAUGE, STATS_UNIT_COUNT, STATS_SCOPE_SERVER,
     STATS_VIEW_NONE, INFO(info_workers)},
    {"mockupstream_open_file_limit", "Open-file limit of the server processes.", "config.open_file_limit", STATS_METRIC_GAUGE,
     STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_NONE, INFO(info_open_file_limit)},

    {NULL, NULL, "requests.total", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_FIELD(requests)},
    {NULL, NULL, "requests.by_protocol.{}", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_REQUEST_PROTOCOL,
     SLOT_FIELD(requests)},
    {NULL, NULL, "requests.by_code.{}", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_REQUEST_CLASS, SLOT_FIELD(requests)},
    {NULL, NULL, "requests.by_status.{}", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_REQUEST_STATUS, SLOT_FIELD(requests)},
    {"mockupstream_requests_total", "Benchmark requests completed, by protocol, TLS and exact status code.", NULL,
     STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_REQUEST, SLOT_FIELD(requests)},
    {"mockupstream_requests_cancelled_total", "Held requests whose client went away before the response.",
     "requests.cancelled", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_FIELD(requests_cancelled)},
    {"mockupstream_protocol_violations_total",
     "Requests that broke a protocol rule, by kind (served anyway, or refused on that request alone).",
     "protocol_violations.{}", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_VIOLATION, SLOT_FIELD(protocol_violations)},
    {"mockupstream_faults_total",
     "Faults carried out (fault=, X-Mock-Fault, --fault), by kind; a faulted request is not in requests_total.",
     "faults.{}", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_FAULT, SLOT_FIELD(faults)},
    {"mockupstream_control_requests_total", "Requests to /stats, /metrics and /healthz (not in requests_total).",
     "control_requests", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_FIELD(control_requests)},
    {"mockupstream_held_requests", "Requests waiting for their delay now.", "held.now", STATS_METRIC_GAUGE, STATS_UNIT_COUNT,
     STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_FIELD(held_now)},
    {NULL, NULL, "held.peak", STATS_METRIC_GAUGE, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_FIELD(held_peak)},

    {NULL, NULL, "connections.open", STATS_METRIC_GAUGE, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_NONE,
     SLOT_DERIVED(slot_connections_open, LISTENER_KIND_COUNT)},
    {NULL, NULL, "connections.accepted", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_NONE,
     SLOT_DERIVED(slot_connections_accepted, LISTENER_KIND_COUNT)},
    {NULL, NULL, "connections.closed", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_FIELD(connections_closed)},
    {"mockupstream_connection_closes_total",
     "Connections closed, by reason (other: out of memory, or closed by h2o for a reason it does not tell: HTTP/2).",
     "connections.closed_by_reason.{}", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_CLOSE_REASON,
     SLOT_FIELD(connections_closed_by_reason)},
    {"mockupstream_accept_fd_exhausted_total", "accept() failures for lack of file descriptors.",
     "connections.fd_exhausted", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_FIELD(accept_fd_exhausted)},
    {"mockupstream_connections_open", "Open connections, by listener.", "connections.by_listener.{}.open", STATS_METRIC_GAUGE,
     STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_LISTENER, SLOT_DERIVED(slot_connections_open, LISTENER_KIND_COUNT)},
    {"mockupstream_connections_accepted_total", "Connections accepted, by listener.", "connections.by_listener.{}.accepted",
     STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_LISTENER, SLOT_DERIVED(slot_connections_accepted, LISTENER_KIND_COUNT)},
    {"mockupstream_connections_closed_total", "Connections closed, by listener.", "connections.by_listener.{}.closed",
     STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_SERVER, STATS_VIEW_LISTENER, SLOT_FIELD(connections_closed)},

    {"mockupstream_request_body_bytes_total", "Request body bytes received.", "bytes.request_body", STATS_METRIC_COUNTER,
     STATS_UNIT_BYTES, STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_FIELD(request_body_bytes)},
    {"mockupstream_response_body_bytes_total", "Response body bytes sent.", "bytes.response_body", STATS_METRIC_COUNTER,
     STATS_UNIT_BYTES, STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_FIELD(response_body_bytes)},

    /* both arrivals merged, for the JSON readers that predate the split (mockstat, scripts) */
    {NULL, NULL, "lateness", STATS_METRIC_HISTOGRAM, STATS_UNIT_NS, STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_HISTOGRAMS(lateness)},
    {"mockupstream_delay_lateness_seconds",
     "Time a delayed response was handed to the socket minus the time it was due, by what its arrival was measured "
     "from (kernel: the kernel's receive time, HTTP/1.1; handler: h2o's hand-over, HTTP/2). Do not sum the two.",
     "lateness.by_arrival.{}", STATS_METRIC_HISTOGRAM, STATS_UNIT_NS, STATS_SCOPE_SERVER, STATS_VIEW_ARRIVAL, SLOT_HISTOGRAMS(lateness)},
    {"mockupstream_applied_delay_seconds", "Delay each benchmark response was given (after --max-delay; 0 for one sent at once).",
     "applied_delay", STATS_METRIC_HISTOGRAM, STATS_UNIT_NS, STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_HISTOGRAMS(applied_delay)},
    {"mockupstream_request_receive_seconds", "Time from a request's first byte to its last (head and body).",
     "request_receive", STATS_METRIC_HISTOGRAM, STATS_UNIT_NS, STATS_SCOPE_SERVER, STATS_VIEW_NONE, SLOT_HISTOGRAMS(request_receive)},

    {"mockupstream_worker_pid", "Process id of each worker (0 while it restarts).", "pid", STATS_METRIC_GAUGE, STATS_UNIT_COUNT,
     STATS_SCOPE_WORKER, STATS_VIEW_NONE, SLOT_DERIVED(slot_pid, 1)},
    {"mockupstream_worker_restarts_total", "Times the master restarted each worker.", "restarts", STATS_METRIC_COUNTER, STATS_UNIT_COUNT,
     STATS_SCOPE_WORKER, STATS_VIEW_NONE, SLOT_FIELD(restarts)},
    {"mockupstream_worker_requests_total", "Benchmark requests completed by each worker.", "requests", STATS_METRIC_COUNTER,
     STATS_UNIT_COUNT, STATS_SCOPE_WORKER, STATS_VIEW_NONE, SLOT_FIELD(requests)},
    {NULL, NULL, "control_requests", STATS_METRIC_COUNTER, STATS_UNIT_COUNT, STATS_SCOPE_WORKER, STATS_VIEW_NONE, SLOT_FIELD(control_requests)},
    {"mockupstream_worker_connections_open", "Open connections of each worker.", "connections_open", STATS_METRIC_GAUGE,
     STATS_UNIT_COUNT, STATS_SCOPE_WORKER, STATS_VIEW_NONE, SLOT_DERIVED(slot_connections_open, LISTENER_KIND_COUNT)},
    {"mockupstream_worker_held_requests", "Requests each worker holds now.", "held_now", STATS_METRIC_GAUGE, STATS_UNIT_COUNT,
     STATS_SCOPE_WORKER, STATS_VIEW_NONE, SLOT_FIELD(held_now)},
    {"mockupstream_worker_held_requests_peak", "Most requests each worker has held at once.", "held_peak", STATS_METRIC_GAUGE,
     STATS_UNIT_COUNT, STATS_SCOPE_WORKER, STATS_VIEW_NONE, SLOT_FIELD(held_peak)},

    /* the standard process collector's names and help, one series per process */
    {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds (per process: worker=\"<index>\" or \"master\").",
     "process.cpu_seconds", STATS_METRIC_COUNTER, STATS_UNIT_NS, STATS_SCOPE_PROCESS, STATS_VIEW_NONE, PROCESS(cpu_ns)},
    {"process_resident_memory_bytes", "Resident memory size in bytes.", "process.resident_memory_bytes", STATS_METRIC_GAUGE,
     STATS_UNIT_BYTES, STATS_SCOPE_PROCESS, STATS_VIEW_NONE, PROCESS(resident_memory_bytes)},
    {"process_virtual_memory_bytes", "Virtual memory size in bytes.", "process.virtual_memory_bytes", STATS_METRIC_GAUGE,
     STATS_UNIT_BYTES, STATS_SCOPE_PROCESS, STATS_VIEW_NONE, PROCESS(virtual_memory_bytes)},
    {"process_open_fds", "Number of open file descriptors.", "process.open_fds", STATS_METRIC_GAUGE, STATS_UNIT_COUNT, STATS_SCOPE_PROCESS,
     STATS_VIEW_NONE, PROCESS(open_fds)},
    {"process_max_fds", "Maximum number of open file descriptors.", "process.max_fds", STATS_METRIC_GAUGE, STATS_UNIT_COUNT,
     STATS_SCOPE_PROCESS, STATS_VIEW_NONE, PROCESS(max_fds)},
    {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "process.start_time_seconds",
     STATS_METRIC_GAUGE, STATS_UNIT_NS, STATS_SCOPE_PROCESS, STATS_VIEW_NONE, PROCESS(start_unix_ns)},
};
const size_t stats_metric_count = sizeof(stats_metrics) / sizeof(stats_metrics[0]);

const struct stats_build_field stats_build_fields[] = {
    {"version", "version", offsetof(struct stats_process_info, version)},
    {"h2o", "build.h2o", offsetof(struct stats_process_info, h2o_version)},
    {"libev", "build.libev", offsetof(struct stats_process_info, libev_version)},
    {"libev_backend", "build.libev_backend", offsetof(struct stats_process_info, libev_backend)},
    {"allocator", "build.allocator", offsetof(struct stats_process_info, allocator)},
    {"timer_method", "build.timer_method", offsetof(struct stats_process_info, timer_method)},
};
const size_t stats_build_field_count = sizeof(stats_build_fields) / sizeof(stats_build_fields[0]);

const struct stats_build_field stats_config_fields[] = {
    {"delay", "config.delay", offsetof(struct stats_process_info, delay_spec)},
    {"status", "config.status", offsetof(struct stats_process_info, status_spec)},
    {"body_size", "config.body_size", offsetof(struct stats_process_info, body_size_spec)},
    {"seed", "config.seed", offsetof(struct stats_process_info, seed)},
};
const size_t stats_config_field_count = sizeof(stats_config_fields) / sizeof(stats_config_fields[0]);

/* ---- views ---- */

_Static_assert(sizeof(((struct stats_worker_slot *)0)->requests) / sizeof(uint64_t) == STATS_VIEW_MAX_GROUPS,
               "the requests array is the largest view");

size_t stats_view_group_count(enum stats_view view, size_t count)
{
    switch (view) {
    case STATS_VIEW_NONE: return 1;
    case STATS_VIEW_REQUEST_PROTOCOL: return STATS_PROTOCOL_COUNT * 2;
    case STATS_VIEW_REQUEST_CLASS: return CODE_CLASS_COUNT;
    case STATS_VIEW_REQUEST_STATUS: return STATS_STATUS_SLOTS;
    default: return count; /* one group per value */
    }
}

/* The group of value i. For the request views, i indexes requests[protocol][tls][status] flat. */
size_t stats_view_group_of(enum stats_view view, size_t i)
{
    size_t status = i % STATS_STATUS_SLOTS;
    switch (view) {
    case STATS_VIEW_NONE: return 0;
    case STATS_VIEW_REQUEST_PROTOCOL: return i / STATS_STATUS_SLOTS;
    case STATS_VIEW_REQUEST_CLASS: return status == STATS_STATUS_OTHER ? CODE_CLASS_COUNT - 1 : status / 100;
    case STATS_VIEW_REQUEST_STATUS: return status;
    default: return i;
    }
}

/* Views with hundreds of possible groups show only those with a count. */
bool stats_view_is_sparse(enum stats_view view)
{
    return view == STATS_VIEW_REQUEST || view == STATS_VIEW_REQUEST_STATUS;
}

static void status_text(size_t status_index, char *buf, size_t size)
{
    if (status_index == STATS_STATUS_OTHER)
        snprintf(buf, size, "other");
    else
        snprintf(buf, size, "%zu", status_index + STATS_STATUS_FIRST);
}

/* The JSON key of group g (what "{}" stands for). */
void stats_view_json_key(enum stats_view view, size_t g, char *buf, size_t size)
{
    switch (view) {
    case STATS_VIEW_LISTENER: snprintf(buf, size, "%s", listener_names[g]); break;
    case STATS_VIEW_VIOLATION: snprintf(buf, size, "%s", violation_names[g]); break;
    case STATS_VIEW_FAULT: snprintf(buf, size, "%s", fault_names[g]); break;
    case STATS_VIEW_CLOSE_REASON: snprintf(buf, size, "%s", close_reason_names[g]); break;
    case STATS_VIEW_ARRIVAL: snprintf(buf, size, "%s", arrival_names[g]); break;
    case STATS_VIEW_REQUEST_PROTOCOL: snprintf(buf, size, "%s%s", protocol_names[g / 2], g % 2 ? "_tls" : ""); break;
    case STATS_VIEW_REQUEST_CLASS: snprintf(buf, size, "%s", class_names[g]); break;
    case STATS_VIEW_REQUEST_STATUS: status_text(g, buf, size); break;
    case STATS_VIEW_NONE:
    case STATS_VIEW_REQUEST: buf[0] = '\0'; break;
    }
}

/* The Prometheus labels of group g, without braces ("" for STATS_VIEW_NONE). */
void stats_view_labels(enum stats_view view, size_t g, char *buf, size_t size)
{
    char code[16];
    switch (view) {
    case STATS_VIEW_LISTENER: snprintf(buf, size, "listener=\"%s\"", listener_names[g]); break;
    case STATS_VIEW_VIOLATION: snprintf(buf, size, "kind=\"%s\"", violation_names[g]); break;
    case STATS_VIEW_FAULT: snprintf(buf, size, "kind=\"%s\"", fault_names[g]); break;
    case STATS_VIEW_CLOSE_REASON: snprintf(buf, size, "reason=\"%s\"", close_reason_names[g]); break;
    case STATS_VIEW_ARRIVAL: snprintf(buf, size, "arrival=\"%s\"", arrival_names[g]); break;
    case STATS_VIEW_REQUEST:
        status_text(g % STATS_STATUS_SLOTS, code, sizeof(code));
        snprintf(buf, size, "protocol=\"%s\",tls=\"%s\",code=\"%s\"", protocol_names[g / STATS_STATUS_SLOTS / 2],
                 (g / STATS_STATUS_SLOTS) % 2 ? "true" : "false", code);
        break;
    default: buf[0] = '\0'; break; /* JSON-only views */
    }
}

