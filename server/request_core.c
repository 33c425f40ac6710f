#include "request_core.h"

#include <string.h>

int request_core_init(struct request_core *core, const struct config *config, const struct stats_segment *stats,
                      struct stats_worker_slot *slot, uint64_t rng_stream, struct delay_queue *delays,
                      void (*on_connection_closed)(void *owner), void *owner)
{
    memset(core, 0, sizeof(*core));
    core->config = config;
    prng_seed(&core->rng, config->seed, (uint32_t)rng_stream);
    if (body_fill_init(&core->fill, config->body, config->body_bytes, config->max_response_bytes) != 0)
        return -1;
    core->handler = (struct handler_context){.config = config, .stats = stats, .rng = &core->rng, .fill = &core->fill,
                                             .specs = &core->specs};
    core->slot = slot;
    core->delays = delays;
    core->on_connection_closed = on_connection_closed;
    core->load_rules = config->delay_per_held_ns != 0 || config->max_held != 0;
    core->owner = owner;
    for (int kind = 0; kind < LISTENER_KIND_COUNT; kind++)
        core->listeners[kind] = (struct request_core_listener){.core = core, .kind = (enum listener_kind)kind};
    return 0;
}

/* The load rules (request_core.h), from this worker's held count before this request. */
static void apply_load_rules(struct request_core *core, struct handler_response *res)
{
    const struct config *cfg = core->config;
    uint64_t held = stats_read(&core->slot->held_now);
    if (cfg->delay_per_held_ns != 0 && held != 0) {
        uint64_t room_ns = cfg->max_delay_ns > res->delay_ns ? cfg->max_delay_ns - res->delay_ns : 0;
        uint64_t extra_ns = held > room_ns / cfg->delay_per_held_ns ? room_ns : held * cfg->delay_per_held_ns;
        res->delay_ns += extra_ns;
    }
    if (cfg->max_held != 0 && res->delay_ns != 0 && held >= cfg->max_held) {
        bool is_head = res->is_head;
        handler_response_release(res);
        handler_response_text(res, HANDLER_KIND_BENCHMARK, 503,
                              "503 Service Unavailable: this worker holds --max-held requests already; retry later\n", is_head);
        res->retry_after_s = 1;
    }
}

void request_core_decide(struct request_core *core, const struct handler_request *req, struct handler_response *res)
{
    handler_route(&core->handler, req, res);
    if (core->load_rules && res->kind == HANDLER_KIND_BENCHMARK && !res->refusal)
        apply_load_rules(core, res);
}

enum request_core_start_result request_core_start(struct request_core *core, struct delay_entry *entry,
                                                  struct handler_response *res, uint64_t arrival_ns)
{
    /* The one hold rule: whatever has a delay waits for it, any status and any path. Control answers
     * never carry one (handler.c). */
    if (res->kind == HANDLER_KIND_BENCHMARK)
        stats_applied_delay_record(core->slot, res->delay_ns);
    if (res->delay_ns == 0)
        return REQUEST_CORE_SEND_NOW;
    if (delay_queue_push(core->delays, entry, res->delay_ns, arrival_ns) == 0) {
        stats_held_inc(core->slot);
        return REQUEST_CORE_HELD;
    }
    bool is_head = res->is_head;
    handler_response_release(res);
    handler_response_text(res, HANDLER_KIND_BENCHMARK, 503, "out of memory holding the request\n", is_head);
    return REQUEST_CORE_REFUSED;
}

void request_core_received(struct request_core *core, uint64_t receive_ns)
{
    stats_request_receive_record(core->slot, receive_ns);
}

void request_core_release(struct request_core *core, const struct delay_entry *entry, enum stats_arrival arrival,
                          uint64_t now_ns)
{
    stats_held_dec(core->slot);
    stats_lateness_record_arrival(core->slot, arrival, now_ns - entry->due_ns);
}

void request_core_cancel(struct request_core *core, struct delay_entry *entry)
{
    if (!delay_entry_is_queued(entry))
        return;
    delay_queue_cancel(core->delays, entry);
    stats_held_dec(core->slot);
    stats_add(&core->slot->requests_cancelled, 1);
}

void request_core_count(struct request_core *core, const struct request_core_outcome *outcome)
{
    const struct handler_response *res = outcome->response;
    if (res->kind == HANDLER_KIND_CONTROL || outcome->listener == LISTENER_STATS)
        stats_add(&core->slot->control_requests, 1);
    else
        stats_request_done(core->slot, outcome->protocol, outcome->listener == LISTENER_TLS, res->status,
                           outcome->request_body_bytes, outcome->response_body_bytes);
}

void request_core_connection_closed(struct request_core *core, enum listener_kind kind, enum stats_close_reason reason)
{
    stats_add(&core->slot->connections_closed_by_reason[reason], 1);
    stats_add(&core->slot->connections_closed[kind], 1);
    if (core->on_connection_closed != NULL)
        core->on_connection_closed(core->owner);
}

void request_core_violation(struct request_core *core, enum stats_violation violation)
{
    stats_add(&core->slot->protocol_violations[violation], 1);
}

void request_core_fault(struct request_core *core, enum fault_kind kind)
{
    if (kind != FAULT_NONE && kind < FAULT_KIND_COUNT)
        stats_add(&core->slot->faults[kind - 1], 1);
}

void request_core_hang(struct request_core *core, struct delay_entry *entry, uint64_t now_ns)
{
    request_core_fault(core, FAULT_HANG);
    /* out of memory the hang still happens, only without its timeout: the client's own ends it */
    if (delay_queue_push(core->delays, entry, core->config->request_timeout_ns, now_ns) == 0) {
        stats_held_inc(core->slot);
        core->hangs_now++;
    }
}

void request_core_hang_over(struct request_core *core)
{
    stats_held_dec(core->slot);
    core->hangs_now--;
}

void request_core_hang_cancel(struct request_core *core, struct delay_entry *entry)
{
    if (!delay_entry_is_queued(entry))
        return;
    request_core_cancel(core, entry);
    core->hangs_now--;
}

int request_core_pace(struct request_core *core, struct delay_entry *entry, uint64_t head_sent_ns, uint64_t offset_ns)
{
    return delay_queue_push(core->delays, entry, offset_ns, head_sent_ns);
}

void request_core_pace_stop(struct request_core *core, struct delay_entry *entry)
{
    if (delay_entry_is_queued(entry))
        delay_queue_cancel(core->delays, entry);
}

uint64_t request_core_connection_age_limit_ns(struct request_core *core)
{
    uint64_t age_ns = core->config->max_connection_age_ns;
    if (age_ns == 0)
        return 0;
    return age_ns - prng_below(&core->rng, age_ns / 10 + 1);
}
