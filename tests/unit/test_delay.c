/* Unit tests for server/delay.c on a real libev loop and timerfd: never early, in due order,
 * cancellation at every position, and many entries over many distinct delays. */
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

static int fire_order[64];
static int fire_order_len;

static void on_due(struct delay_entry *entry, uint64_t now_ns)
{
    struct probe *p = (struct probe *)entry;
    p->fired_ns = clock_monotonic_ns();
    p->fired_count++;
    if (fire_order_len < 64)
        fire_order[fire_order_len++] = p->id;
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

static void test_never_early_and_in_due_order(void)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(delay_queue_init(&q, loop) == 0);
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

static void test_cancel_every_position(void)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(delay_queue_init(&q, loop) == 0);
    test_start_ns = clock_monotonic_ns();
    struct probe p[5] = {0}, only = {0};
    for (int i = 0; i < 5; i++)
        push(&q, &p[i], i, 3 * NS_PER_MS);
    push(&q, &only, 9, 4 * NS_PER_MS);
    delay_queue_cancel(&q, &p[0].entry); /* head */
    delay_queue_cancel(&q, &p[2].entry); /* middle */
    delay_queue_cancel(&q, &p[4].entry); /* tail */
    delay_queue_cancel(&q, &only.entry); /* the only entry of its FIFO */
    delay_queue_cancel(&q, &only.entry); /* harmless twice */
    CHECK(q.queued == 2 && q.fifo_count == 1);
    run_until_empty(loop, &q, NS_PER_SEC);
    CHECK(p[1].fired_count == 1 && p[3].fired_count == 1);
    CHECK(p[0].fired_count + p[2].fired_count + p[4].fired_count + only.fired_count == 0);
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
}

static void test_many_entries_many_delays(void)
{
    enum { COUNT = 100000, DISTINCT = 1000 };
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(delay_queue_init(&q, loop) == 0);
    test_start_ns = clock_monotonic_ns();
    struct probe *p = calloc(COUNT, sizeof(*p));
    for (int i = 0; i < COUNT; i++)
        push(&q, &p[i], i, (100 + (uint64_t)(i % DISTINCT) * 5) * NS_PER_US); /* 0.1 .. 5.1 ms */
    CHECK(q.fifo_count == DISTINCT);
    run_until_empty(loop, &q, 5 * NS_PER_SEC);
    int early = 0, wrong_count = 0;
    for (int i = 0; i < COUNT; i++) {
        early += p[i].fired_ns < p[i].entry.due_ns;
        wrong_count += p[i].fired_count != 1;
    }
    CHECK(early == 0 && wrong_count == 0 && q.queued == 0 && q.fifo_count == 0);
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
    CHECK(delay_queue_init(&q, loop) == 0);
    static struct probe p[N + 1];
    memset(p, 0, sizeof(p));
    uint64_t base_ns = clock_monotonic_ns();
    fire_order_len = 0;
    /* another FIFO whose head (due base + 2.025 ms) the 2 ms FIFO's head overtakes as it moves earlier */
    p[N].id = N;
    p[N].entry.on_due = on_due;
    CHECK(delay_queue_push(&q, &p[N].entry, 1995 * NS_PER_US, base_ns + 30 * NS_PER_US) == 0);
    /* ids 0..29 arrive 1 us apart and are pushed last-first; ids 30..59 arrive later, pushed shuffled */
    for (int i = 29; i >= 0; i--) {
        p[i].id = i;
        p[i].entry.on_due = on_due;
        CHECK(delay_queue_push(&q, &p[i].entry, 2 * NS_PER_MS, base_ns + (uint64_t)i * NS_PER_US) == 0);
    }
    for (int k = 0; k < 30; k++) {
        int i = 30 + (k * 7) % 30; /* 7 is coprime with 30: a permutation */
        p[i].id = i;
        p[i].entry.on_due = on_due;
        CHECK(delay_queue_push(&q, &p[i].entry, 2 * NS_PER_MS, base_ns + (uint64_t)i * NS_PER_US) == 0);
    }
    CHECK(q.fifo_count == 2 && q.queued == N + 1);
    run_until_empty(loop, &q, NS_PER_SEC);
    CHECK(q.queued == 0 && fire_order_len == N + 1);
    int out_of_order = 0, early = 0;
    for (int i = 0; i <= N; i++) {
        out_of_order += i > 0 && p[fire_order[i]].entry.due_ns < p[fire_order[i - 1]].entry.due_ns;
        early += p[i].fired_count != 1 || p[i].fired_ns < p[i].entry.due_ns;
    }
    CHECK(fire_order[0] == 0 && fire_order[N] == 59 && fire_order[26] == N); /* due 2.000, 2.059, 2.025 ms */
    CHECK(out_of_order == 0 && early == 0);
    delay_queue_dispose(&q);
    ev_loop_destroy(loop);
}

static void test_fire_due_without_the_loop(void)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue q;
    CHECK(delay_queue_init(&q, loop) == 0);
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
    CHECK(delay_queue_init(&q, loop) == 0);
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

int main(void)
{
    RUN(test_never_early_and_in_due_order);
    RUN(test_cancel_every_position);
    RUN(test_many_entries_many_delays);
    RUN(test_pushes_out_of_arrival_order);
    RUN(test_fire_due_without_the_loop);
    RUN(test_closely_spaced_entries_with_a_large_wake_lead);
    return unit_finish();
}
