#include "delay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"

/* The heap never shrinks below this many nodes (1 KiB of memory: not worth returning). */
#define DELAY_HEAP_MIN_CAP 64

/* Push order of two entries, as serial numbers (the counter wraps). */
static bool pushed_before(const struct delay_entry *a, const struct delay_entry *b)
{
    return (int32_t)(a->push_seq - b->push_seq) < 0;
}

static void entry_mark_unqueued(struct delay_entry *entry)
{
    entry->place = DELAY_ENTRY_UNQUEUED;
    entry->next = entry->prev = NULL;
}

/* ---- the 4-ary heap (entries with no run) ---- */

static size_t heap_parent(size_t index)
{
    return (index - DELAY_HEAP_ROOT - 1) / 4 + DELAY_HEAP_ROOT;
}

static size_t heap_first_child(size_t index)
{
    return 4 * (index - DELAY_HEAP_ROOT) + DELAY_HEAP_ROOT + 1;
}

static bool node_before(const struct delay_heap_node *a, const struct delay_heap_node *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && pushed_before(a->entry, b->entry));
}

static void heap_place(struct delay_queue *queue, size_t index, struct delay_heap_node node)
{
    queue->heap[index] = node;
    node.entry->heap_index = index;
}

static void heap_sift_up(struct delay_queue *queue, size_t index, struct delay_heap_node node)
{
    while (index > DELAY_HEAP_ROOT) {
        size_t parent = heap_parent(index);
        if (!node_before(&node, &queue->heap[parent]))
            break;
        heap_place(queue, index, queue->heap[parent]);
        index = parent;
    }
    heap_place(queue, index, node);
}

static void heap_sift_down(struct delay_queue *queue, size_t index, struct delay_heap_node node)
{
    size_t end = DELAY_HEAP_ROOT + queue->heap_len;
    for (;;) {
        size_t child = heap_first_child(index);
        if (child >= end)
            break;
        size_t siblings_end = child + 4 < end ? child + 4 : end;
        size_t best = child;
        for (size_t sibling = child + 1; sibling < siblings_end; sibling++)
            if (node_before(&queue->heap[sibling], &queue->heap[best]))
                best = sibling;
        if (!node_before(&queue->heap[best], &node))
            break;
        heap_place(queue, index, queue->heap[best]);
        index = best;
    }
    heap_place(queue, index, node);
}

/* Moves the heap to an array of `cap` nodes, 64-byte aligned (realloc would not keep the alignment). */
static int heap_resize(struct delay_queue *queue, size_t cap)
{
    void *memory;
    if (posix_memalign(&memory, 64, (cap + DELAY_HEAP_ROOT) * sizeof(struct delay_heap_node)) != 0)
        return -1;
    struct delay_heap_node *heap = memory;
    if (queue->heap != NULL)
        memcpy(heap + DELAY_HEAP_ROOT, queue->heap + DELAY_HEAP_ROOT, queue->heap_len * sizeof(*heap));
    free(queue->heap);
    queue->heap = heap;
    queue->heap_cap = cap;
    return 0;
}

static int heap_push(struct delay_queue *queue, struct delay_entry *entry)
{
    if (queue->heap_len == queue->heap_cap &&
        heap_resize(queue, queue->heap_cap ? queue->heap_cap * 2 : DELAY_HEAP_MIN_CAP) != 0)
        return -1;
    entry->place = DELAY_ENTRY_IN_HEAP;
    heap_sift_up(queue, DELAY_HEAP_ROOT + queue->heap_len++, (struct delay_heap_node){entry->due_ns, entry});
    return 0;
}

static void heap_remove(struct delay_queue *queue, struct delay_entry *entry)
{
    size_t index = entry->heap_index;
    struct delay_heap_node last = queue->heap[DELAY_HEAP_ROOT + --queue->heap_len];
    if (last.entry != entry) {
        if (index > DELAY_HEAP_ROOT && node_before(&last, &queue->heap[heap_parent(index)]))
            heap_sift_up(queue, index, last);
        else
            heap_sift_down(queue, index, last);
    }
    /* Memory follows the requests held now, with hysteresis so a size near a boundary does not
     * copy back and forth; a failed shrink just keeps the larger array. */
    if (queue->heap_cap > DELAY_HEAP_MIN_CAP && queue->heap_len < queue->heap_cap / 8)
        heap_resize(queue, queue->heap_cap / 2);
}

/* ---- runs (entries sharing one delay value) ---- */

/* Start times are arrival times, and a worker reads a batch of ready connections in some order of
 * its event loop's (libev walks each batch backwards): entries come in runs, each run in or against
 * due-time order. Searching from the previous push makes either kind O(1) per entry. The new entry
 * has the highest push_seq, so it goes after every entry due at the same time. Returns false, with
 * nothing changed, if its place is more than DELAY_RUN_MAX_WALK steps away. */
static bool run_insert(struct delay_run *run, struct delay_entry *entry)
{
    struct delay_entry *after;
    if (run->tail->due_ns <= entry->due_ns) {
        after = run->tail;
    } else {
        after = run->last_pushed != NULL ? run->last_pushed : run->tail;
        int steps = 0;
        if (after->due_ns <= entry->due_ns) {
            while (after->next->due_ns <= entry->due_ns) { /* stops before the tail, checked above */
                if (++steps > DELAY_RUN_MAX_WALK)
                    return false;
                after = after->next;
            }
        } else {
            while (after != NULL && after->due_ns > entry->due_ns) {
                if (++steps > DELAY_RUN_MAX_WALK)
                    return false;
                after = after->prev;
            }
        }
    }
    entry->prev = after;
    entry->next = after != NULL ? after->next : run->head;
    if (entry->next != NULL)
        entry->next->prev = entry;
    else
        run->tail = entry;
    if (after != NULL) {
        after->next = entry;
    } else {
        run->head = entry;
        run->head_due_ns = entry->due_ns;
    }
    return true;
}

static void run_remove(struct delay_run *run, struct delay_entry *entry)
{
    if (run->last_pushed == entry)
        run->last_pushed = NULL;
    if (entry->prev != NULL) {
        entry->prev->next = entry->next;
    } else {
        run->head = entry->next;
        run->head_due_ns = run->head != NULL ? run->head->due_ns : UINT64_MAX;
    }
    if (entry->next != NULL)
        entry->next->prev = entry->prev;
    else
        run->tail = entry->prev;
}

/* Puts the entry in the run of its delay value, or claims an empty run for that value. Returns false
 * if the entry belongs in the heap: every run holds another value, or its place in its run is too
 * far from the previous push (then the run keeps its value: a second run of the same value would
 * only split its entries). */
static bool runs_push(struct delay_queue *queue, struct delay_entry *entry, uint64_t delay_ns)
{
    struct delay_run *empty = NULL;
    for (size_t i = 0; i < DELAY_RUN_COUNT; i++) {
        struct delay_run *run = &queue->runs[i];
        if (run->head == NULL) {
            if (empty == NULL)
                empty = run;
        } else if (run->delay_ns == delay_ns) {
            if (!run_insert(run, entry))
                return false;
            run->last_pushed = entry;
            entry->place = DELAY_ENTRY_IN_RUN + (uint32_t)i;
            return true;
        }
    }
    if (empty == NULL)
        return false;
    entry->next = entry->prev = NULL;
    empty->head = empty->tail = empty->last_pushed = entry;
    empty->head_due_ns = entry->due_ns;
    empty->delay_ns = delay_ns;
    entry->place = DELAY_ENTRY_IN_RUN + (uint32_t)(empty - queue->runs);
    return true;
}

/* ---- the whole order ---- */

/* The earliest entry (the heap's root or a run's head; NULL if nothing is queued), its due time in
 * *due_ns, and in *others_ns the earliest due time among the other places. Due times are read from
 * the heap array and the runs; entries only to break a tie (this runs after every connection
 * callback, mostly to find that nothing is due). */
static struct delay_entry *queue_earliest(const struct delay_queue *queue, uint64_t *due_ns, uint64_t *others_ns)
{
    struct delay_entry *best = NULL;
    uint64_t best_ns = UINT64_MAX, second_ns = UINT64_MAX;
    if (queue->heap_len != 0) {
        best = queue->heap[DELAY_HEAP_ROOT].entry;
        best_ns = queue->heap[DELAY_HEAP_ROOT].due_ns;
    }
    for (size_t i = 0; i < DELAY_RUN_COUNT; i++) {
        const struct delay_run *run = &queue->runs[i];
        if (run->head_due_ns < best_ns ||
            (run->head != NULL && run->head_due_ns == best_ns && (best == NULL || pushed_before(run->head, best)))) {
            second_ns = best_ns;
            best = run->head;
            best_ns = run->head_due_ns;
        } else if (run->head_due_ns < second_ns) {
            second_ns = run->head_due_ns;
        }
    }
    *due_ns = best_ns;
    *others_ns = second_ns;
    return best;
}

static void queue_remove(struct delay_queue *queue, struct delay_entry *entry)
{
    if (entry->place == DELAY_ENTRY_IN_HEAP)
        heap_remove(queue, entry);
    else
        run_remove(&queue->runs[entry->place - DELAY_ENTRY_IN_RUN], entry);
    entry_mark_unqueued(entry);
    queue->queued--;
}

/* ---- the timerfd ---- */

static void timer_arm(struct delay_queue *queue, uint64_t due_ns)
{
    uint64_t lead_ns = queue->use_wake_lead ? queue->wake_lead_ns : 0;
    uint64_t expiry_ns = due_ns > lead_ns ? due_ns - lead_ns : due_ns;
    struct itimerspec spec = {.it_value = {.tv_sec = (time_t)(expiry_ns / NS_PER_SEC), .tv_nsec = (long)(expiry_ns % NS_PER_SEC)}};
    /* Re-arming also resets the expiry count: this is what clears a fired timerfd (see on_timer_readable). */
    timerfd_settime(queue->timer_fd, TFD_TIMER_ABSTIME, &spec, NULL);
    queue->armed_due_ns = due_ns;
    queue->armed_expiry_ns = expiry_ns;
    queue->timer_arms++;
}

/* Learns how late the kernel delivers timer wake-ups (1/8 weight per sample). */
static void wake_lead_update(struct delay_queue *queue, uint64_t woke_ns)
{
    uint64_t latency_ns = woke_ns > queue->armed_expiry_ns ? woke_ns - queue->armed_expiry_ns : 0;
    if (latency_ns > DELAY_MAX_WAKE_LEAD_NS)
        latency_ns = DELAY_MAX_WAKE_LEAD_NS;
    queue->wake_lead_ns = (queue->wake_lead_ns * 7 + latency_ns) / 8;
}

/* The timer woke us up to wake_lead_ns early on purpose: wait out the rest on the clock. */
static void spin_until_due(const struct delay_queue *queue)
{
    /* only for the entry the timer was armed for: if it already left (fired between connection
     * callbacks, or cancelled), a later one gets a timer of its own rather than a long spin */
    uint64_t next = delay_queue_next_due_ns(queue);
    if (next == UINT64_MAX || next > queue->armed_due_ns)
        return;
    uint64_t now_ns = clock_monotonic_ns();
    if (next <= now_ns || next - now_ns > DELAY_MAX_WAKE_LEAD_NS)
        return;
    while (clock_monotonic_ns() < next)
        __builtin_ia32_pause();
}

static void timer_disarm(struct delay_queue *queue)
{
    struct itimerspec spec = {{0, 0}, {0, 0}};
    timerfd_settime(queue->timer_fd, 0, &spec, NULL);
    queue->armed_due_ns = queue->armed_expiry_ns = 0;
}

/* Keeps two invariants whenever the loop blocks: if anything is queued, the timerfd fires no later
 * than the earliest due time; and the timerfd is readable only if its current arming has expired
 * (an expired arming is always replaced here, which is what resets the unread expiry count). */
static void timer_update(struct delay_queue *queue, uint64_t now_ns)
{
    uint64_t next = delay_queue_next_due_ns(queue);
    bool expired = queue->armed_due_ns != 0 && queue->armed_expiry_ns <= now_ns;
    if (next == UINT64_MAX) {
        /* a pending arming is left alone (one harmless wake-up later, cheaper than a syscall now) */
        if (expired)
            timer_disarm(queue);
        return;
    }
    if (queue->armed_due_ns == 0 || expired || next < queue->armed_due_ns)
        timer_arm(queue, next);
}

/* The expiry count is not read: timer_update() replaces every expired arming before the loop blocks
 * again, and timerfd_settime() resets the count, so a read() here would be a syscall per wake-up for
 * nothing. (Level-triggered, the fd stays readable until then; nothing blocks in between.) */
static void on_timer_readable(struct ev_loop *loop, ev_io *watcher, int revents)
{
    struct delay_queue *queue = watcher->data;
    queue->timer_wakeups++;
    uint64_t now_ns = clock_monotonic_ns();
    if (queue->armed_due_ns != 0 && now_ns >= queue->armed_expiry_ns) {
        /* only a wake-up from sleep says how late the kernel delivers timers; when the expiry
         * passed while the worker was busy, the gap is our own work and would inflate the lead */
        if (queue->blocked_at_ns < queue->armed_expiry_ns)
            wake_lead_update(queue, now_ns);
        spin_until_due(queue);
    }
    delay_queue_fire_due(queue);
}

/* The timerfd is armed here, once per loop iteration, rather than whenever the earliest entry
 * changes: under load that changes with nearly every request, and arming an hrtimer costs ~8 us in a
 * VM. */
void delay_queue_before_block(struct delay_queue *queue)
{
    queue->blocked_at_ns = clock_monotonic_ns();
    timer_update(queue, queue->blocked_at_ns);
}

/* Measures how busy the worker is, from the time its loop spends blocked. Spinning to due times only
 * pays while the worker is mostly idle: under load most entries leave between connection callbacks,
 * and the early timer wake-ups that remain cost ~5-9 % of the worker's CPU in spins (measured at
 * 1,000 wrk connections), CPU the worker then needs for requests. Nor when wake-ups are many: with a
 * distribution of delays nearly every response needs its own (measured, lognormal p50 10 ms p99 50 ms
 * at 100 connections: 40-47 us of CPU per request with the spins, 33 without, 15-17 at a fixed
 * delay). */
static void on_after_block(struct ev_loop *loop, ev_check *watcher, int revents)
{
    struct delay_queue *queue = watcher->data;
    uint64_t now_ns = clock_monotonic_ns();
    queue->window_blocked_ns += now_ns - queue->blocked_at_ns;
    uint64_t window_ns = now_ns - queue->window_start_ns;
    if (window_ns < DELAY_BUSY_WINDOW_NS)
        return;
    uint64_t busy_ns = window_ns > queue->window_blocked_ns ? window_ns - queue->window_blocked_ns : 0;
    /* what spinning costs (or would cost) per window, counted whether or not it was on, so the
     * decision does not flip-flop between windows */
    uint64_t spin_cost_ns = (queue->timer_wakeups - queue->window_start_wakeups) * queue->wake_lead_ns;
    queue->use_wake_lead = busy_ns * 100 < window_ns * DELAY_SPIN_MAX_BUSY_PCT &&
                           spin_cost_ns * 100 < window_ns * DELAY_SPIN_MAX_COST_PCT;
    queue->window_start_ns = now_ns;
    queue->window_blocked_ns = 0;
    queue->window_start_wakeups = queue->timer_wakeups;
}

/* ---- public ---- */

int delay_queue_init(struct delay_queue *queue, struct ev_loop *loop)
{
    memset(queue, 0, sizeof(*queue));
    queue->loop = loop;
    queue->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (queue->timer_fd < 0)
        return -1;
    for (size_t i = 0; i < DELAY_RUN_COUNT; i++)
        queue->runs[i].head_due_ns = UINT64_MAX;
    if (heap_resize(queue, DELAY_HEAP_MIN_CAP) != 0) {
        close(queue->timer_fd);
        errno = ENOMEM;
        return -1;
    }
    ev_io_init(&queue->timer_watcher, on_timer_readable, queue->timer_fd, EV_READ);
    queue->timer_watcher.data = queue;
    ev_io_start(loop, &queue->timer_watcher);
    ev_check_init(&queue->after_block_watcher, on_after_block);
    queue->after_block_watcher.data = queue;
    ev_check_start(loop, &queue->after_block_watcher);
    queue->use_wake_lead = true;
    queue->blocked_at_ns = queue->window_start_ns = clock_monotonic_ns();
    return 0;
}

void delay_queue_dispose(struct delay_queue *queue)
{
    ev_io_stop(queue->loop, &queue->timer_watcher);
    ev_check_stop(queue->loop, &queue->after_block_watcher);
    close(queue->timer_fd);
    for (size_t i = 0; i < DELAY_RUN_COUNT; i++) {
        for (struct delay_entry *entry = queue->runs[i].head, *next; entry != NULL; entry = next) {
            next = entry->next;
            entry_mark_unqueued(entry);
        }
    }
    for (size_t i = 0; i < queue->heap_len; i++)
        entry_mark_unqueued(queue->heap[DELAY_HEAP_ROOT + i].entry);
    free(queue->heap);
    memset(queue, 0, sizeof(*queue));
    queue->timer_fd = -1;
}

uint64_t delay_queue_next_due_ns(const struct delay_queue *queue)
{
    uint64_t next = queue->heap_len != 0 ? queue->heap[DELAY_HEAP_ROOT].due_ns : UINT64_MAX;
    for (size_t i = 0; i < DELAY_RUN_COUNT; i++)
        if (queue->runs[i].head_due_ns < next)
            next = queue->runs[i].head_due_ns;
    return next;
}

int delay_queue_push(struct delay_queue *queue, struct delay_entry *entry, uint64_t delay_ns, uint64_t start_ns)
{
    entry->due_ns = start_ns + delay_ns;
    entry->push_seq = ++queue->push_seq;
    if (!runs_push(queue, entry, delay_ns) && heap_push(queue, entry) != 0) {
        entry_mark_unqueued(entry);
        return -1;
    }
    queue->queued++;
    return 0;
}

void delay_queue_cancel(struct delay_queue *queue, struct delay_entry *entry)
{
    /* an early timer wake-up costs less than re-arming on every cancel: the timer is left alone */
    if (delay_entry_is_queued(entry))
        queue_remove(queue, entry);
}

void delay_queue_fire_due(struct delay_queue *queue)
{
    /* called after every connection callback: one clock read when nothing is due */
    uint64_t now_ns = clock_monotonic_ns();
    bool now_is_fresh = true;
    uint64_t due_ns, others_ns;
    struct delay_entry *entry;
    uint32_t pass_seq = queue->push_seq;
    while ((entry = queue_earliest(queue, &due_ns, &others_ns)) != NULL) {
        /* A pass fires what was queued before it began. An entry a callback queues already due (a
         * paced body's next part, when the worker runs late) waits for the next pass, a loop
         * iteration later: else a chain of them would hold the loop, and every other connection,
         * until the chain ends. */
        if ((int32_t)(entry->push_seq - pass_seq) > 0)
            break;
        if (due_ns > now_ns) {
            /* callbacks take time: look at the clock again before deciding to stop */
            if (now_is_fresh)
                break;
            now_ns = clock_monotonic_ns();
            now_is_fresh = true;
            if (due_ns > now_ns)
                break;
        }
        /* Entries are fired from the same place (a run, or the heap) while each is due and strictly
         * before everything elsewhere, which is looked up once rather than per entry: with one delay
         * value, one run, the common benchmark, the earliest is looked up once per call. A callback
         * that pushes may have queued something earlier: then it is looked up again. (One that
         * cancels only makes the bound lower than it need be.) */
        struct delay_run *run = entry->place == DELAY_ENTRY_IN_HEAP ? NULL : &queue->runs[entry->place - DELAY_ENTRY_IN_RUN];
        uint32_t push_seq = queue->push_seq;
        for (;;) {
            queue_remove(queue, entry);
            now_is_fresh = false;
            entry->on_due(entry, now_ns);
            uint64_t next_ns;
            if (run != NULL) {
                entry = run->head;
                next_ns = run->head_due_ns;
            } else {
                entry = queue->heap_len != 0 ? queue->heap[DELAY_HEAP_ROOT].entry : NULL;
                next_ns = queue->heap_len != 0 ? queue->heap[DELAY_HEAP_ROOT].due_ns : UINT64_MAX;
            }
            if (entry == NULL || next_ns > now_ns || next_ns >= others_ns || queue->push_seq != push_seq)
                break;
        }
    }
}
