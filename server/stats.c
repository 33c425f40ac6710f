#include "stats.h"

#include <string.h>
#include <sys/mman.h>

/* Ten steps per decade from 1 us to 100 s: 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 (x 10^k). */
const uint64_t stats_histogram_bucket_upper_ns[STATS_HISTOGRAM_BUCKET_COUNT] = {
#define DECADE(ns) (ns), (ns) * 5 / 4, (ns) * 3 / 2, (ns) * 2, (ns) * 5 / 2, (ns) * 3, (ns) * 4, (ns) * 5, (ns) * 6, (ns) * 8
    DECADE(1000ull),       DECADE(10000ull),       DECADE(100000ull),       DECADE(1000000ull),
    DECADE(10000000ull),   DECADE(100000000ull),   DECADE(1000000000ull),   DECADE(10000000000ull),
#undef DECADE
    100000000000ull,
};

struct stats_segment *stats_segment_create(void)
{
    void *p = mmap(NULL, sizeof(struct stats_segment), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    /* anonymous mappings are zero-filled */
    return p;
}

size_t stats_histogram_bucket_index(uint64_t value_ns)
{
    /* Binary search for the first bound >= value_ns. */
    size_t lo = 0, hi = STATS_HISTOGRAM_BUCKET_COUNT;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (stats_histogram_bucket_upper_ns[mid] < value_ns)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void stats_histogram_record(struct stats_histogram *histogram, uint64_t value_ns)
{
    stats_add(&histogram->buckets[stats_histogram_bucket_index(value_ns)], 1);
    stats_add(&histogram->sum_ns, value_ns);
    if (value_ns > histogram->max_ns)
        __atomic_store_n(&histogram->max_ns, value_ns, __ATOMIC_RELAXED);
    /* count last: a reader that sees count never sees it larger than the bucket sum it also read */
    stats_add(&histogram->count, 1);
}

void stats_held_inc(struct stats_worker_slot *slot)
{
    stats_add(&slot->held_now, 1);
    if (slot->held_now > slot->held_peak)
        __atomic_store_n(&slot->held_peak, slot->held_now, __ATOMIC_RELAXED);
}

void stats_held_dec(struct stats_worker_slot *slot)
{
    stats_sub(&slot->held_now, 1);
}

void stats_lateness_record_arrival(struct stats_worker_slot *slot, enum stats_arrival arrival, uint64_t lateness_ns)
{
    stats_histogram_record(&slot->lateness[arrival < STATS_ARRIVAL_COUNT ? arrival : STATS_ARRIVAL_HANDLER], lateness_ns);
}

void stats_applied_delay_record(struct stats_worker_slot *slot, uint64_t delay_ns)
{
    stats_histogram_record(&slot->applied_delay, delay_ns);
}

void stats_request_receive_record(struct stats_worker_slot *slot, uint64_t receive_ns)
{
    stats_histogram_record(&slot->request_receive, receive_ns);
}

void stats_request_done(struct stats_worker_slot *slot, enum stats_protocol protocol, int tls, int status,
                        uint64_t request_body_bytes, uint64_t response_body_bytes)
{
    stats_add(&slot->requests[protocol][tls != 0][stats_status_index(status)], 1);
    if (request_body_bytes != 0)
        stats_add(&slot->request_body_bytes, request_body_bytes);
    stats_add(&slot->response_body_bytes, response_body_bytes);
}

void stats_slot_reset_after_death(struct stats_worker_slot *slot)
{
    /* The kernel closed every connection of the dead process and its held requests are lost. */
    for (int i = 0; i < LISTENER_KIND_COUNT; i++)
        __atomic_store_n(&slot->connections_closed[i], stats_read(&slot->connections_accepted[i]), __ATOMIC_RELAXED);
    stats_add(&slot->requests_cancelled, stats_read(&slot->held_now));
    __atomic_store_n(&slot->held_now, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->pid, 0, __ATOMIC_RELAXED);
}
