/* delay: requests waiting for their due time, in one worker.
 *
 * Why not one ev_timer per request: libev's epoll backend rounds its waits up to whole milliseconds
 * (~0.5 ms late at p50). Instead every distinct delay value gets a FIFO sorted by due time (requests
 * with the same delay become due in arrival order, so a push appends, or walks a step or two when a
 * batch was read out of arrival order), the FIFOs sit in a min-heap keyed by their head's due time,
 * and one timerfd (CLOCK_MONOTONIC, absolute) watched by an ev_io wakes the worker for the earliest
 * head. Push and cancel are O(1) unless a FIFO's head changes.
 *
 * Entries are also fired from delay_queue_fire_due(), which the worker calls after every connection
 * callback, so under load most requests leave on a wake-up the worker had anyway. The timerfd is
 * armed only just before the loop blocks (an ev_prepare), and only when its expiry has passed or the
 * earliest entry changed: at most once per loop iteration, not once per request. Nothing is ever
 * fired early.
 *
 * Waking an idle CPU takes tens of microseconds in a VM (the host must inject the timer interrupt).
 * The queue measures that wake-up latency (exponential average, from real sleeps only) and arms the
 * timerfd that much ahead of the due time, capped at DELAY_MAX_WAKE_LEAD_NS; when it wakes early it
 * spins on the vDSO clock until the entry is due. It does so only while the worker is mostly idle
 * (DELAY_SPIN_MAX_BUSY_PCT): under load most entries leave between connection callbacks anyway, and
 * the spins would take CPU the worker needs for requests.
 *
 * The caller embeds a struct delay_entry in its own request object; the queue never allocates per
 * request (only per distinct delay value). */
#ifndef MOCKUPSTREAM_DELAY_H
#define MOCKUPSTREAM_DELAY_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct delay_entry;
struct delay_fifo;

/* Called when the entry is due; the entry is already out of the queue. `now_ns` is CLOCK_MONOTONIC. */
typedef void (*delay_due_cb)(struct delay_entry *entry, uint64_t now_ns);

struct delay_entry {
    struct delay_entry *next, *prev; /* private */
    struct delay_fifo *fifo;         /* private: NULL when not queued */
    uint64_t due_ns;                 /* ro */
    delay_due_cb on_due;             /* rw: set before delay_queue_push */
};

/* Upper bound of the early wake-up: spinning longer than this per wake-up costs too much CPU. */
#define DELAY_MAX_WAKE_LEAD_NS 200000ull
/* Early wake-ups (and their spins) only while the worker was busy less than this share of the last
 * window; above it, timer wake-ups come the kernel's wake-up latency late instead. */
#define DELAY_SPIN_MAX_BUSY_PCT 50
#define DELAY_BUSY_WINDOW_NS 100000000ull

struct delay_queue {
    struct ev_loop *loop;
    ev_io timer_watcher;
    ev_prepare before_block_watcher; /* arms the timerfd */
    ev_check after_block_watcher;    /* measures how busy the worker is */
    int timer_fd;
    uint64_t armed_due_ns;    /* the due time the timerfd is armed for; 0 if disarmed or already fired */
    uint64_t armed_expiry_ns; /* when it actually fires: armed_due_ns minus the wake lead */
    uint64_t wake_lead_ns;    /* average observed wake-up latency, capped */
    uint64_t blocked_at_ns;   /* when the loop last went to wait for events */
    uint64_t window_start_ns, window_blocked_ns; /* loop time blocked in the current busy window */
    bool use_wake_lead;       /* the worker was mostly idle in the last window: wake early and spin */
    /* FIFOs by delay value (chained hash), and the non-empty ones as a min-heap by head due time */
    struct delay_fifo **fifo_buckets;
    size_t fifo_bucket_count, fifo_count;
    struct delay_fifo **heap;
    size_t heap_len, heap_cap;
    size_t queued; /* entries waiting now */
    uint64_t timer_arms, timer_wakeups; /* counters for profiling */
};

/* Creates the timerfd and starts its watcher on `loop`. Returns 0, or -1 with errno set. */
int delay_queue_init(struct delay_queue *queue, struct ev_loop *loop);

/* Stops the watcher, closes the timerfd and frees the FIFOs. Queued entries are dropped unfired. */
void delay_queue_dispose(struct delay_queue *queue);

/* Queues `entry` to fire at start_ns + delay_ns (start_ns: when the request arrived, CLOCK_MONOTONIC,
 * not in the future). Returns 0, or -1 if out of memory (entry not queued). */
int delay_queue_push(struct delay_queue *queue, struct delay_entry *entry, uint64_t delay_ns, uint64_t start_ns);

/* Removes a queued entry without firing it. Harmless if the entry is not queued. */
void delay_queue_cancel(struct delay_queue *queue, struct delay_entry *entry);

static inline bool delay_entry_is_queued(const struct delay_entry *entry)
{
    return entry->fifo != NULL;
}

/* Fires every entry due by now. (The timerfd is armed for the next one just before the loop blocks.) */
void delay_queue_fire_due(struct delay_queue *queue);

/* Due time of the earliest queued entry, or UINT64_MAX if none. */
uint64_t delay_queue_next_due_ns(const struct delay_queue *queue);

#endif
