/* delay: requests waiting for their due time, in one worker.
 *
 * Why not one ev_timer per request: libev's epoll backend rounds its waits up to whole milliseconds
 * (~0.5 ms late at p50). Instead the queue orders every held request by due time itself, and one
 * timerfd (CLOCK_MONOTONIC, absolute) watched by an ev_io wakes the worker for the earliest one.
 *
 * The order: entries are intrusive (the caller embeds struct delay_entry in its request object) and
 * live in one of two places, so the queue never allocates per request:
 * - a run: a due-ordered list of the entries that share one delay value. Requests with the same delay
 *   become due in arrival order, so a push appends or walks a step or two from the previous push (a
 *   batch read out of arrival order), and the earliest entry is the run's head: push and pop are O(1).
 *   There are DELAY_RUN_COUNT runs, embedded in the queue; an empty one is claimed by the next delay
 *   value pushed that has none. This keeps the common benchmark (every request the same delay) as
 *   cheap as it ever was.
 * - a 4-ary min-heap of the rest (delays chosen per request from a distribution: nearly every value
 *   distinct), keyed by (due time, push order), with each entry's index stored in the entry: push,
 *   pop and cancel are O(log n); a push that is due after everything queued is O(1). The array grows
 *   by doubling (amortised, not per request) and shrinks when mostly empty.
 * The earliest entry is the earliest of the heap's root and the runs' heads; fire_due then keeps
 * firing from the same place while it stays strictly earliest, without looking elsewhere again.
 * Entries due at the same nanosecond fire in push order. Nothing is ever fired early.
 * Why this shape (tests/unit/bench_delay.c, 100,000 held, `make bench-delay`): the previous design, a
 * FIFO allocated per distinct delay value in a heap of FIFOs, costs ~3.5x more per request once every
 *  request has its own delay (a malloc/free and a cache-missing heap of FIFOs per request); a plain
 * heap costs ~10x more than a FIFO when every request has the same delay (O(log n) pops); runs + heap
 * keep both cases at their best.
 *
 * Entries are also fired from delay_queue_fire_due(), which the worker calls after every connection
 * callback, so under load most requests leave on a wake-up the worker had anyway. The timerfd is
 * armed only just before the loop blocks (delay_queue_before_block, the last step of the worker's
 * before-block sequence), and only when its expiry has passed or the
 * earliest entry changed: at most once per loop iteration, not once per request. A fired timerfd is
 * never read: re-arming (or disarming) it before the loop blocks again resets it, which saves a
 * read() per timer wake-up.
 *
 * Waking an idle CPU takes tens of microseconds in a VM (the host must inject the timer interrupt).
 * The queue measures that wake-up latency (exponential average, from real sleeps only) and arms the
 * timerfd that much ahead of the due time, capped at DELAY_MAX_WAKE_LEAD_NS; when it wakes early it
 * spins on the vDSO clock until the entry is due. It does so only while the worker is mostly idle
 * (DELAY_SPIN_MAX_BUSY_PCT): under load most entries leave between connection callbacks anyway, and
 * the spins would take CPU the worker needs for requests. */
#ifndef MOCKUPSTREAM_DELAY_H
#define MOCKUPSTREAM_DELAY_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct delay_entry;

/* Called when the entry is due; the entry is already out of the queue. `now_ns` is CLOCK_MONOTONIC. */
typedef void (*delay_due_cb)(struct delay_entry *entry, uint64_t now_ns);

/* Where a queued entry is: `place` is 0 when not queued, DELAY_ENTRY_IN_HEAP, or DELAY_ENTRY_IN_RUN
 * plus the index of its run. */
#define DELAY_ENTRY_UNQUEUED 0u
#define DELAY_ENTRY_IN_HEAP 1u
#define DELAY_ENTRY_IN_RUN 2u

/* 40 bytes: it lives in every connection object, and an idle connection must stay in one small
 * allocator size class (see struct http1_conn). */
struct delay_entry {
    uint64_t due_ns;     /* ro: when it fires, CLOCK_MONOTONIC */
    delay_due_cb on_due; /* rw: set before delay_queue_push */
    /* private */
    union {
        struct {
            struct delay_entry *next, *prev; /* neighbours in its run */
        };
        size_t heap_index; /* index in the heap array */
    };
    /* Push order, to fire entries due at the same nanosecond in push order. 32 bits, compared as a
     * wrapping serial number: right while no entry stays queued across 2^31 later pushes; past that,
     * only the order among entries due at the very same nanosecond could be wrong, never a due time. */
    uint32_t push_seq;
    uint32_t place;
};
_Static_assert(sizeof(struct delay_entry) <= 40, "struct delay_entry is embedded in every connection: keep it at 40 bytes");

/* Runs (FIFOs of one delay value each) kept beside the heap: a few distinct fixed delays in use at once
 * (a default and a per-path one) each keep their O(1) path; each run costs a compare whenever the
 * earliest entry is looked up. */
#ifndef DELAY_RUN_COUNT /* overridable only to compare variants in tests/unit/bench_delay.c */
#define DELAY_RUN_COUNT 4
#endif
/* A push walks at most this many steps from the previous push of its run to find its place; further
 * away, it goes to the heap (a scan of a long list would cost more than the heap's O(log n)). */
#define DELAY_RUN_MAX_WALK 8

struct delay_run {
    uint64_t head_due_ns; /* head->due_ns, or UINT64_MAX when empty: the earliest is found without
                           * reading the entries */
    struct delay_entry *head, *tail;
    struct delay_entry *last_pushed; /* where the next push most likely goes; NULL once it left */
    uint64_t delay_ns;               /* the value this run holds; meaningful only while non-empty */
};

/* One heap slot: the due time beside the entry so sifting reads the array, not the entries. 16 bytes,
 * so the 4 children of a node fill one 64-byte cache line (the array is aligned to match). */
struct delay_heap_node {
    uint64_t due_ns;
    struct delay_entry *entry;
};

/* The heap array starts this many slots before its root, so each group of 4 siblings starts at a
 * multiple of 4 (one cache line); libev's 4-heap does the same. */
#define DELAY_HEAP_ROOT 3

/* Upper bound of the early wake-up: spinning longer than this per wake-up costs too much CPU. */
#define DELAY_MAX_WAKE_LEAD_NS 200000ull
/* Early wake-ups (and their spins) only while the worker was busy less than this share of the last
 * window; above it, timer wake-ups come the kernel's wake-up latency late instead. */
#define DELAY_SPIN_MAX_BUSY_PCT 50
/* ... and only while spinning would cost less than this share of the window: timer wake-ups x the
 * wake lead. Requests with their own delays (a distribution) each need a wake-up of their own; at a
 * few thousand a second, a ~30 us spin for each would double the worker's CPU per request. */
#define DELAY_SPIN_MAX_COST_PCT 3
#define DELAY_BUSY_WINDOW_NS 100000000ull

struct delay_queue {
    struct ev_loop *loop;
    ev_io timer_watcher;
    ev_check after_block_watcher;    /* measures how busy the worker is */
    int timer_fd;
    uint64_t armed_due_ns;    /* the due time the timerfd is armed for; 0 if disarmed */
    uint64_t armed_expiry_ns; /* when it actually fires: armed_due_ns minus the wake lead */
    uint64_t wake_lead_ns;    /* average observed wake-up latency, capped */
    uint64_t blocked_at_ns;   /* when the loop last went to wait for events */
    uint64_t window_start_ns, window_blocked_ns; /* loop time blocked in the current busy window */
    uint64_t window_start_wakeups; /* timer_wakeups when the window started */
    bool use_wake_lead;       /* in the last window the worker was mostly idle and its timer wake-ups
                                 were few: wake early and spin */
    struct delay_run runs[DELAY_RUN_COUNT];
    struct delay_heap_node *heap; /* 4-ary min-heap; the root is at index DELAY_HEAP_ROOT */
    size_t heap_len, heap_cap;    /* nodes in use / allocated, not counting the unused slots before the root */
    uint32_t push_seq; /* of the last push (wraps) */
    size_t queued; /* entries waiting now */
    uint64_t timer_arms, timer_wakeups; /* counters for profiling */
};

/* Creates the timerfd and starts its watcher on `loop`. Returns 0, or -1 with errno set. */
int delay_queue_init(struct delay_queue *queue, struct ev_loop *loop);

/* Stops the watcher, closes the timerfd and frees the heap. Queued entries are dropped unfired (and
 * read as not queued afterwards). */
void delay_queue_dispose(struct delay_queue *queue);

/* Queues `entry` to fire at start_ns + delay_ns (start_ns: when the request arrived, CLOCK_MONOTONIC,
 * not in the future). Returns 0, or -1 if out of memory (entry not queued; only a heap that must grow
 * can fail). */
int delay_queue_push(struct delay_queue *queue, struct delay_entry *entry, uint64_t delay_ns, uint64_t start_ns);

/* Removes a queued entry without firing it. Harmless if the entry is not queued. */
void delay_queue_cancel(struct delay_queue *queue, struct delay_entry *entry);

static inline bool delay_entry_is_queued(const struct delay_entry *entry)
{
    return entry->place != DELAY_ENTRY_UNQUEUED;
}

/* Arms the timerfd for the earliest entry if it is not armed for it already. Call last before the
 * loop blocks (after anything that may queue requests). */
void delay_queue_before_block(struct delay_queue *queue);

/* Fires every entry due by now. (The timerfd is armed for the next one just before the loop blocks.) */
void delay_queue_fire_due(struct delay_queue *queue);

/* Due time of the earliest queued entry, or UINT64_MAX if none. */
uint64_t delay_queue_next_due_ns(const struct delay_queue *queue);

#endif
