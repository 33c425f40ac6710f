/* Unit tests for server/delay.c: never early, in (due time, push order) order, cancellation at every
 * position of both the runs and the heap, random operations against a reference model, and many
 * entries.
 *
 * The queue reads the real clock, so the tests stay deterministic two ways: the timing tests run a
 * real libev loop and only check what cannot depend on the scheduler (never early, order by due time,
 * all fired); the order tests use due times far in the past (due at any fire_due) or far in the
 * future (never due while the test runs), so which entries fire never depends on timing. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "delay.h"
#include "unit.h"

struct probe {
    struct delay_entry entry;
    int id;
    uint64_t fired_ns;
    int fired_count;
};

enum { ORDER_CAP = 100000 };
static int fire_order[ORDER_CAP];
static int fire_order_len;

static void on_due(struct delay_entry *entry, uint64_t now_ns)
{
    struct probe *p = (struct probe *)entry;
    p->fired_ns = clock_monotonic_ns();
    p->fired_count++;
    if (fire_order_len < ORDER_CAP)
        fire_order[fire_order_len++] = p->id;
}

/* The worker arms the queue's timer last before its loop blocks (worker.c); tests do the same. */
static ev_prepare before_block;

static void on_before_block(struct ev_loop *loop, ev_prepare *watcher, int revents)
{
    delay_queue_before_block(watcher->data);
}

static int queue_init(struct delay_queue *queue, struct ev_loop *loop)
{
    int result = delay_queue_init(queue, loop);
    ev_prepare_init(&before_block, on_before_block);
    before_block.data = queue;
    ev_set_priority(&before_block, EV_MINPRI);
    ev_prepare_start(loop, &before_block);
    return result;
}

static void run_until_empty(struct ev_loop *loop, struct delay_queue *queue, uint64_t limit_ns)
{
    uint64_t deadline = clock_monotonic_ns() + limit_ns;
    while (queue->queued != 0 && clock_monotonic_ns() < deadline)
        ev_run(loop, EVRUN_ONCE);
}

/* Every push of a test starts from the same instant: reading the clock per push made the expected
 * order depend on the scheduler (a push preempted for a millisecond reordered due times; ~6 runs in
 * 60 failed on a loaded 2-core machine). */
static uint64_t test_start_ns;

static void push(struct delay_queue *q, struct probe *p, int id, uint64_t delay_ns)
{
    p->id = id;
    p->entry.on_due = on_due;
    CHECK(delay_queue_push(q, &p->entry, delay_ns, test_start_ns) == 0);
}

static void push_at(struct delay_queue *q, struct probe *p, int id, uint64_t delay_ns, uint64_t start_ns)
{
    p->id = id;
    p->entry.on_due = on_due;
    CHECK(delay_queue_push(q, &p->entry, delay_ns, start_ns) == 0);
}

static size_t runs_in_use(const struct delay_queue *q)
{
    size_t n = 0;
    for (size_t i = 0; i < DELAY_RUN_COUNT; i++)
        n += q->runs[i].head != NULL;
    return n;
}

/* White-box: every heap node is not before its parent and knows its index; every run is in (due,
 * push order) order and links both ways; the counts add up. */
static int queue_inconsistencies(const struct delay_queue *q)
{
    int bad = 0;
    for (size_t i = 0; i < q->heap_len; i++) {
        size_t index = DELAY_HEAP_ROOT + i;
        const struct delay_heap_node *node = &q->heap[index];
        bad += node->entry->place != DELAY_ENTRY_IN_HEAP || node->entry->heap_index != index;
        bad += node->due_ns != node->entry->due_ns;
        if (index > DELAY_HEAP_ROOT) {
            const struct delay_heap_node *parent = &q->heap[(index - DELAY_HEAP_ROOT - 1) / 4 + DELAY_HEAP_ROOT];
            bad += node->due_ns < parent->due_ns ||
                   (node->due_ns == parent->due_ns && (int32_t)(node->entry->push_seq - parent->entry->push_seq) < 0);
        }
    }
    size_t in_runs = 0;
    for (size_t r = 0; r < DELAY_RUN_COUNT; r++) {
        const struct delay_run *run = &q->runs[r];
        bad += (run->head == NULL) != (run->tail == NULL);
        bad += run->head_due_ns != (run->head != NULL ? run->head->due_ns : UINT64_MAX);
        for (const struct delay_entry *e = run->head; e != NULL; e = e->next, in_runs++) {
            bad += e->place != DELAY_ENTRY_IN_RUN + r;
            bad += (e->prev == NULL) != (e == run->head) || (e->next == NULL) != (e == run->tail);
            bad += e->next != NULL && e->next->prev != e;
            bad += e->next != NULL && (e->next->due_ns < e->due_ns ||
                                       (e->next->due_ns == e->due_ns && (int32_t)(e->next->push_seq - e->push_seq) < 0));
        }
    }
    bad += in_runs + q->heap_len != q->queued;
    return bad;
}

/* splitmix64: a fixed seed gives the same operations on every run */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t bound)
{
    return rng_next() % bound;
}

static void test_never_early_and_in_due_order(void)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(queue_init(&q, loop) == 0);
    test_start_ns = clock_monotonic_ns();
    struct probe p[6] = {0};
    uint64_t delays_ms[6] = {5, 2, 5, 1, 3, 2};
    fire_order_len = 0;
    for (int i = 0; i < 6; i++)
        push(&q, &p[i], i, delays_ms[i] * NS_PER_MS);
    run_until_empty(loop, &q, NS_PER_SEC);
    CHECK(q.queued == 0);
    for (int i = 0; i < 6; i++) {
        CHECK(p[i].fired_count == 1);
        CHECK(p[i].fired_ns >= p[i].entry.due_ns);
    }
    int expected[6] = {3, 1, 5, 4, 0, 2}; /* by due time; equal delays keep arrival order */
    for (int i = 0; i < 6; i++)
        CHECK(fire_order[i] == expected[i]);
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
}

/* Entries due at the same nanosecond fire in push order, wherever they are kept: the same delay (one
 * run), other delays (other runs), and more distinct delays than there are runs (the heap); also
 * while the 32-bit push counter wraps. */
static void test_equal_due_times_keep_push_order(void)
{
    enum { N = 40 };
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(queue_init(&q, loop) == 0);
    static struct probe p[N];
    for (int round = 0; round < 2; round++) {
        memset(p, 0, sizeof(p));
        if (round == 1)
            q.push_seq = UINT32_MAX - N / 2;
        uint64_t due_ns = clock_monotonic_ns() / 2; /* long past: everything is due at once */
        for (int i = 0; i < N; i++) {
            uint64_t delay_ns = (i % 3 == 0) ? 1000 : 1000 + (uint64_t)i; /* every third shares a delay */
            push_at(&q, &p[i], i, delay_ns, due_ns - delay_ns);
        }
        CHECK(q.heap_len > 0 && runs_in_use(&q) == DELAY_RUN_COUNT); /* both kinds of place in use */
        fire_order_len = 0;
        delay_queue_fire_due(&q);
        CHECK(fire_order_len == N && q.queued == 0);
        int out_of_order = 0;
        for (int i = 0; i < fire_order_len; i++)
            out_of_order += fire_order[i] != i;
        CHECK(out_of_order == 0);
    }
    CHECK(q.push_seq < N); /* it did wrap */
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
}

/* fire_due fires a run's entries one after another without looking elsewhere, so a callback that
 * queues an entry due before the run's next one, or cancels the run's next one, must be seen; and a
 * pass never fires what was queued during it (a chain of already-due entries would hold the loop). */
static struct delay_queue *callback_queue;
static struct probe callback_probes[5];
static uint64_t callback_base_ns;

static void on_due_then_push_or_cancel(struct delay_entry *entry, uint64_t now_ns)
{
    on_due(entry, now_ns);
    struct probe *p = (struct probe *)entry;
    if (p->id == 0) /* due base + 2, a delay of its own (another run) */
        push_at(callback_queue, &callback_probes[3], 3, 7 * NS_PER_MS, callback_base_ns + 2 - 7 * NS_PER_MS);
    if (p->id == 1) /* the run's next entry (id 2) is cancelled */
        delay_queue_cancel(callback_queue, &callback_probes[2].entry);
}

static void test_callbacks_that_push_or_cancel(void)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(queue_init(&q, loop) == 0);
    callback_queue = &q;
    /* round 0: the entries in runs; round 1: every run taken by a far-future entry, so in the heap */
    static struct probe fillers[DELAY_RUN_COUNT];
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            for (int i = 0; i < DELAY_RUN_COUNT; i++)
                push_at(&q, &fillers[i], 100 + i, 1000 * NS_PER_SEC + (uint64_t)i, clock_monotonic_ns());
        memset(callback_probes, 0, sizeof(callback_probes));
        callback_base_ns = clock_monotonic_ns() / 2; /* everything is due */
        uint64_t delay_ns = 5 * NS_PER_MS;
        uint64_t dues[] = {1, 3, 5, 0, 9}; /* ids 0, 1, 2 and 4 with one delay; 3 is pushed by 0's callback */
        for (int i = 0; i < 5; i++) {
            if (i == 3)
                continue;
            push_at(&q, &callback_probes[i], i, delay_ns, callback_base_ns + dues[i] - delay_ns);
            callback_probes[i].entry.on_due = on_due_then_push_or_cancel;
        }
        CHECK(round == 0 ? q.heap_len == 0 : q.heap_len == 4);
        fire_order_len = 0;
        delay_queue_fire_due(&q);
        /* a pass fires only what was queued before it began: 3, queued (already due) by 0's
         * callback, waits for the next pass, and so does everything due after it */
        CHECK(fire_order_len == 1 && fire_order[0] == 0);
        delay_queue_fire_due(&q);
        CHECK(fire_order_len == 4 && q.queued == (round == 0 ? 0 : DELAY_RUN_COUNT));
        CHECK(fire_order[0] == 0 && fire_order[1] == 3 && fire_order[2] == 1 && fire_order[3] == 4);
        CHECK(callback_probes[2].fired_count == 0);
    }
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
}

/* Cancels the head, a middle entry and the tail of a run and of the heap, then fires the rest on the
 * real loop: exactly the others fire, once each, in due order. */
static void test_cancel_every_position(void)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(queue_init(&q, loop) == 0);
    test_start_ns = clock_monotonic_ns();
    enum { RUN_N = 5, HEAP_N = 12 };
    struct probe run[RUN_N] = {0}, heap[HEAP_N] = {0}, only = {0};
    for (int i = 0; i < RUN_N; i++)
        push(&q, &run[i], i, 3 * NS_PER_MS);
    push(&q, &only, 99, 4 * NS_PER_MS); /* alone in its run */
    /* distinct delays, pushed in no order; every run is taken by now except those left: fill them */
    for (int i = 0; i < DELAY_RUN_COUNT - 2; i++) {
        static struct probe filler[DELAY_RUN_COUNT];
        push(&q, &filler[i], 200 + i, (5 + (uint64_t)i) * NS_PER_MS);
    }
    CHECK(runs_in_use(&q) == DELAY_RUN_COUNT && q.heap_len == 0);
    for (int i = 0; i < HEAP_N; i++)
        push(&q, &heap[i], 100 + i, 2 * NS_PER_MS + (uint64_t)((i * 7) % HEAP_N) * 50 * NS_PER_US);
    CHECK(q.heap_len == HEAP_N);
    int heap_head = 0, heap_tail = 0;
    for (int i = 0; i < HEAP_N; i++) {
        heap_head = heap[i].entry.due_ns < heap[heap_head].entry.due_ns ? i : heap_head;
        heap_tail = heap[i].entry.due_ns > heap[heap_tail].entry.due_ns ? i : heap_tail;
    }
    CHECK(heap[heap_head].entry.heap_index == DELAY_HEAP_ROOT);
    int heap_middle = (heap_head + HEAP_N / 2) % HEAP_N;
    CHECK(heap_middle != heap_tail);
    delay_queue_cancel(&q, &run[0].entry); /* run head */
    delay_queue_cancel(&q, &run[2].entry); /* run middle */
    delay_queue_cancel(&q, &run[4].entry); /* run tail */
    delay_queue_cancel(&q, &only.entry);   /* the only entry of its run */
    delay_queue_cancel(&q, &only.entry);   /* harmless twice */
    delay_queue_cancel(&q, &heap[heap_head].entry);
    delay_queue_cancel(&q, &heap[heap_middle].entry);
    delay_queue_cancel(&q, &heap[heap_tail].entry);
    CHECK(!delay_entry_is_queued(&run[0].entry) && !delay_entry_is_queued(&heap[heap_head].entry));
    CHECK(delay_entry_is_queued(&run[1].entry) && delay_entry_is_queued(&heap[(heap_head + 1) % HEAP_N].entry));
    CHECK(q.queued == 2 + (HEAP_N - 3) + (DELAY_RUN_COUNT - 2) && q.heap_len == HEAP_N - 3);
    CHECK(runs_in_use(&q) == DELAY_RUN_COUNT - 1); /* the emptied run is free for another value */
    fire_order_len = 0;
    run_until_empty(loop, &q, NS_PER_SEC);
    CHECK(q.queued == 0);
    CHECK(run[1].fired_count == 1 && run[3].fired_count == 1);
    CHECK(run[0].fired_count + run[2].fired_count + run[4].fired_count + only.fired_count == 0);
    int heap_fired = 0;
    for (int i = 0; i < HEAP_N; i++)
        heap_fired += heap[i].fired_count;
    CHECK(heap_fired == HEAP_N - 3);
    CHECK(heap[heap_head].fired_count + heap[heap_middle].fired_count + heap[heap_tail].fired_count == 0);
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
}

/* The reference model: 10,000 random pushes, cancels and fires, checked after every operation.
 * Pushes mix a few fixed delays (runs; start times near each other, in and against order, so some
 * are placed by a walk and some are too far and go to the heap) with distinct delays (heap), and
 * draw due times from a small pool now and then so equal due times meet across runs and heap.
 * Half the entries are due long ago (each fire_due takes all of them, in order), half in 1,000 s
 * (never due here): the model knows exactly which fire. */
struct model_entry {
    struct probe probe;
    uint64_t seq;
    int queued;
};

static struct model_entry *model_entries;

static int model_cmp(const void *a, const void *b)
{
    const struct model_entry *x = &model_entries[*(const int *)a], *y = &model_entries[*(const int *)b];
    if (x->probe.entry.due_ns != y->probe.entry.due_ns)
        return x->probe.entry.due_ns < y->probe.entry.due_ns ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void test_random_operations_against_a_model(void)
{
    enum { OPS = 10000 };
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(queue_init(&q, loop) == 0);
    rng_state = 12345;
    model_entries = calloc(OPS, sizeof(*model_entries));
    int *ids = calloc(OPS, sizeof(*ids));
    int *live = calloc(OPS, sizeof(*live)); /* ids of queued entries, unordered */
    int live_len = 0, pushed = 0, mismatches = 0, fires = 0, fired_total = 0, cancels = 0;
    uint64_t now_ns = clock_monotonic_ns();
    uint64_t past_base_ns = now_ns / 4, future_base_ns = now_ns + 1000 * NS_PER_SEC;
    const uint64_t fixed_delays_ns[3] = {10 * NS_PER_MS, 25 * NS_PER_MS, 40 * NS_PER_MS};
    uint64_t cursor_ns[2][3] = {{0}};
    uint64_t seq = 0;
    for (int op = 0; op < OPS; op++) {
        uint64_t roll = rng_below(100);
        if (roll < 60 && pushed < OPS) {
            struct model_entry *m = &model_entries[pushed];
            int future = (int)rng_below(2);
            uint64_t base_ns = future ? future_base_ns : past_base_ns;
            uint64_t delay_ns, start_ns;
            uint64_t kind = rng_below(10);
            if (kind < 5) { /* a fixed delay, start times in runs with jitter against order */
                int f = (int)rng_below(3);
                cursor_ns[future][f] += rng_below(2000);
                delay_ns = fixed_delays_ns[f];
                uint64_t jitter_ns = rng_below(4) == 0 ? rng_below(20000) : 0;
                start_ns = base_ns + cursor_ns[future][f] - (jitter_ns < cursor_ns[future][f] ? jitter_ns : 0);
            } else if (kind < 8) { /* a distinct delay */
                delay_ns = 1 + rng_below(100 * NS_PER_MS);
                start_ns = base_ns + rng_below(NS_PER_SEC);
            } else { /* a due time from a small pool, any delay: ties */
                uint64_t due_ns = base_ns + 50 * NS_PER_MS + rng_below(4) * NS_PER_MS;
                delay_ns = rng_below(3) == 0 ? fixed_delays_ns[rng_below(3)] : 1 + rng_below(40 * NS_PER_MS);
                start_ns = due_ns - delay_ns;
            }
            push_at(&q, &m->probe, pushed, delay_ns, start_ns);
            CHECK(m->probe.entry.due_ns == start_ns + delay_ns);
            m->seq = ++seq;
            m->queued = 1;
            live[live_len++] = pushed++;
        } else if (roll < 85 && live_len > 0) {
            int k = (int)rng_below((uint64_t)live_len);
            struct model_entry *m = &model_entries[live[k]];
            delay_queue_cancel(&q, &m->probe.entry);
            m->queued = 0;
            live[k] = live[--live_len];
            cancels++;
        } else {
            /* expected: every queued entry due in the past, by (due, push order) */
            int expected_len = 0;
            for (int k = 0; k < live_len; k++)
                if (model_entries[live[k]].probe.entry.due_ns < now_ns)
                    ids[expected_len++] = live[k];
            qsort(ids, (size_t)expected_len, sizeof(*ids), model_cmp);
            fire_order_len = 0;
            delay_queue_fire_due(&q);
            fires++;
            mismatches += fire_order_len != expected_len;
            for (int k = 0; k < expected_len && k < fire_order_len; k++)
                mismatches += fire_order[k] != ids[k];
            fired_total += fire_order_len;
            for (int k = 0; k < live_len;) {
                if (model_entries[live[k]].probe.entry.due_ns < now_ns) {
                    model_entries[live[k]].queued = 0;
                    live[k] = live[--live_len];
                } else {
                    k++;
                }
            }
        }
        /* after every operation: the count, the earliest due time, and who reads as queued */
        uint64_t model_next_ns = UINT64_MAX;
        for (int k = 0; k < live_len; k++)
            if (model_entries[live[k]].probe.entry.due_ns < model_next_ns)
                model_next_ns = model_entries[live[k]].probe.entry.due_ns;
        mismatches += q.queued != (size_t)live_len;
        mismatches += queue_inconsistencies(&q);
        mismatches += delay_queue_next_due_ns(&q) != model_next_ns;
    }
    for (int i = 0; i < pushed; i++) {
        mismatches += delay_entry_is_queued(&model_entries[i].probe.entry) != model_entries[i].queued;
        mismatches += model_entries[i].probe.fired_count > 1;
    }
    CHECK(mismatches == 0);
    CHECK(fires > 500 && fired_total > 1000 && cancels > 1000); /* the mix exercised every operation */
    /* the future entries, taken out in due order by cancelling the earliest each time */
    qsort(live, (size_t)live_len, sizeof(*live), model_cmp);
    int drain_mismatches = 0;
    for (int k = 0; k < live_len; k++) {
        struct model_entry *m = &model_entries[live[k]];
        drain_mismatches += delay_queue_next_due_ns(&q) != m->probe.entry.due_ns;
        delay_queue_cancel(&q, &m->probe.entry);
    }
    CHECK(live_len > 100 && drain_mismatches == 0 && q.queued == 0 && q.heap_len == 0 && runs_in_use(&q) == 0);
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
    free(live);
    free(ids);
    free(model_entries);
}

static void test_many_entries_many_delays(void)
{
    enum { COUNT = 100000, DISTINCT = 1000 };
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(queue_init(&q, loop) == 0);
    test_start_ns = clock_monotonic_ns();
    struct probe *p = calloc(COUNT, sizeof(*p));
    for (int i = 0; i < COUNT; i++)
        push(&q, &p[i], i, (100 + (uint64_t)(i % DISTINCT) * 5) * NS_PER_US); /* 0.1 .. 5.1 ms */
    CHECK(q.queued == COUNT && q.heap_len > COUNT / 2);
    fire_order_len = 0;
    run_until_empty(loop, &q, 5 * NS_PER_SEC);
    int early = 0, wrong_count = 0, out_of_order = 0;
    for (int i = 0; i < COUNT; i++) {
        early += p[i].fired_ns < p[i].entry.due_ns;
        wrong_count += p[i].fired_count != 1;
        out_of_order += i > 0 && p[fire_order[i]].entry.due_ns < p[fire_order[i - 1]].entry.due_ns;
    }
    CHECK(early == 0 && wrong_count == 0 && out_of_order == 0 && q.queued == 0);
    CHECK(q.heap_len == 0 && q.heap_cap <= 1024); /* the array shrank back as the entries left */
    free(p);
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
}

/* Arrival stamps come from the kernel, so pushes are not in start-time order: a batch read backwards,
 * then a shuffled one, all with the same delay. Every entry fires once, in due order, never early. */
static void test_pushes_out_of_arrival_order(void)
{
    enum { N = 60 };
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(queue_init(&q, loop) == 0);
    static struct probe p[N + 1];
    memset(p, 0, sizeof(p));
    uint64_t base_ns = clock_monotonic_ns();
    fire_order_len = 0;
    /* another run whose head (due base + 2.025 ms) the 2 ms run's head overtakes as it moves earlier */
    push_at(&q, &p[N], N, 1995 * NS_PER_US, base_ns + 30 * NS_PER_US);
    /* ids 0..29 arrive 1 us apart and are pushed last-first; ids 30..59 arrive later, pushed shuffled */
    for (int i = 29; i >= 0; i--)
        push_at(&q, &p[i], i, 2 * NS_PER_MS, base_ns + (uint64_t)i * NS_PER_US);
    CHECK(q.heap_len == 0); /* a batch read backwards is placed in its run, a step at a time */
    for (int k = 0; k < 30; k++) {
        int i = 30 + (k * 7) % 30; /* 7 is coprime with 30: a permutation */
        push_at(&q, &p[i], i, 2 * NS_PER_MS, base_ns + (uint64_t)i * NS_PER_US);
    }
    CHECK(q.queued == N + 1);
    run_until_empty(loop, &q, NS_PER_SEC);
    CHECK(q.queued == 0 && fire_order_len == N + 1);
    int out_of_order = 0, early = 0;
    for (int i = 0; i <= N; i++) {
        out_of_order += i > 0 && p[fire_order[i]].entry.due_ns < p[fire_order[i - 1]].entry.due_ns;
        early += p[i].fired_count != 1 || p[i].fired_ns < p[i].entry.due_ns;
    }
    /* due 2.000, 2.059 and 2.025 ms; id 25 is due at 2.025 ms too, and N was pushed first */
    CHECK(fire_order[0] == 0 && fire_order[N] == 59 && fire_order[25] == N && fire_order[26] == 25);
    CHECK(out_of_order == 0 && early == 0);
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
}

static void test_fire_due_without_the_loop(void)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(queue_init(&q, loop) == 0);
    test_start_ns = clock_monotonic_ns();
    struct probe now = {0}, later = {0};
    push(&q, &now, 1, 0);
    push(&q, &later, 2, 10 * NS_PER_SEC);
    delay_queue_fire_due(&q);
    CHECK(now.fired_count == 1 && later.fired_count == 0 && q.queued == 1);
    CHECK(delay_queue_next_due_ns(&q) == later.entry.due_ns);
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
}

/* Regression: with a large wake lead, re-arming for the next entry sets an expiry that is already
 * past; a read() of the timerfd after that used to swallow it and leave entries with no timer
 * (the loop then slept ~60 s). Every entry must fire promptly. */
static void test_closely_spaced_entries_with_a_large_wake_lead(void)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(queue_init(&q, loop) == 0);
    test_start_ns = clock_monotonic_ns();
    enum { N = 200 };
    static struct probe p[N];
    for (int round = 0; round < 5; round++) {
        memset(p, 0, sizeof(p));
        q.wake_lead_ns = DELAY_MAX_WAKE_LEAD_NS;
        test_start_ns = clock_monotonic_ns();
        for (int i = 0; i < N; i++)
            push(&q, &p[i], i, NS_PER_MS + (uint64_t)i * 20 * NS_PER_US);
        uint64_t started = clock_monotonic_ns();
        run_until_empty(loop, &q, 2 * NS_PER_SEC);
        CHECK(q.queued == 0);
        CHECK(clock_monotonic_ns() - started < NS_PER_SEC);
        int early = 0;
        for (int i = 0; i < N; i++)
            early += p[i].fired_count != 1 || p[i].fired_ns < p[i].entry.due_ns;
        CHECK(early == 0);
    }
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
}

/* The timerfd is never read: each expired arming must be replaced before the loop blocks again, or
 * the level-triggered fd would wake the loop over and over. After the entries have fired, a few
 * non-blocking loop passes must not call the timer callback again, with entries left (re-armed) or
 * none (disarmed). */
static void test_a_fired_timer_does_not_wake_the_loop_again(void)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(queue_init(&q, loop) == 0);
    for (int round = 0; round < 2; round++) {
        test_start_ns = clock_monotonic_ns();
        struct probe soon = {0}, late = {0};
        push(&q, &soon, 1, 2 * NS_PER_MS);
        if (round == 0)
            push(&q, &late, 2, 100 * NS_PER_SEC);
        uint64_t deadline = clock_monotonic_ns() + NS_PER_SEC;
        while (soon.fired_count == 0 && clock_monotonic_ns() < deadline)
            ev_run(loop, EVRUN_ONCE);
        CHECK(soon.fired_count == 1);
        ev_run(loop, EVRUN_NOWAIT); /* the pass that re-arms (or disarms) */
        uint64_t wakeups = q.timer_wakeups;
        for (int i = 0; i < 5; i++)
            ev_run(loop, EVRUN_NOWAIT);
        CHECK(q.timer_wakeups == wakeups);
        delay_queue_cancel(&q, &late.entry);
    }
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
}

/* 100,000 entries, most in the heap, dropped by dispose: every entry reads as not queued afterwards
 * and nothing leaks (ASan's leak check runs at exit). */
static void test_dispose_with_many_entries(void)
{
    enum { COUNT = 100000 };
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(queue_init(&q, loop) == 0);
    rng_state = 777;
    test_start_ns = clock_monotonic_ns();
    struct probe *p = calloc(COUNT, sizeof(*p));
    for (int i = 0; i < COUNT; i++)
        push(&q, &p[i], i, i % 10 == 0 ? 10 * NS_PER_SEC : 10 * NS_PER_SEC + 1 + rng_below(90 * NS_PER_SEC));
    CHECK(q.queued == COUNT && q.heap_len > COUNT / 2 && q.heap_cap >= q.heap_len);
    delay_queue_dispose(&q);
    int queued = 0;
    for (int i = 0; i < COUNT; i++)
        queued += delay_entry_is_queued(&p[i].entry);
    CHECK(queued == 0 && q.heap == NULL && q.queued == 0);
    free(p);
    ev_loop_destroy(loop);
}

int main(void)
{
    RUN(test_never_early_and_in_due_order);
    RUN(test_equal_due_times_keep_push_order);
    RUN(test_callbacks_that_push_or_cancel);
    RUN(test_cancel_every_position);
    RUN(test_random_operations_against_a_model);
    RUN(test_many_entries_many_delays);
    RUN(test_pushes_out_of_arrival_order);
    RUN(test_fire_due_without_the_loop);
    RUN(test_closely_spaced_entries_with_a_large_wake_lead);
    RUN(test_a_fired_timer_does_not_wake_the_loop_again);
    RUN(test_dispose_with_many_entries);
    return unit_finish();
}
