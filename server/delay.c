#include "delay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"

struct delay_fifo {
    uint64_t delay_ns;
    struct delay_entry *head, *tail;
    struct delay_entry *last_pushed; /* where the next push most likely goes; NULL once it left */
    size_t heap_index;
    struct delay_fifo *hash_next;
};

/* ---- min-heap of non-empty FIFOs, keyed by head->due_ns ---- */

static uint64_t fifo_key(const struct delay_fifo *fifo)
{
    return fifo->head->due_ns;
}

static void heap_place(struct delay_queue *queue, size_t index, struct delay_fifo *fifo)
{
    queue->heap[index] = fifo;
    fifo->heap_index = index;
}

static void heap_sift_up(struct delay_queue *queue, size_t index)
{
    struct delay_fifo *fifo = queue->heap[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (fifo_key(queue->heap[parent]) <= fifo_key(fifo))
            break;
        heap_place(queue, index, queue->heap[parent]);
        index = parent;
    }
    heap_place(queue, index, fifo);
}

static void heap_sift_down(struct delay_queue *queue, size_t index)
{
    struct delay_fifo *fifo = queue->heap[index];
    for (;;) {
        size_t child = 2 * index + 1;
        if (child >= queue->heap_len)
            break;
        if (child + 1 < queue->heap_len && fifo_key(queue->heap[child + 1]) < fifo_key(queue->heap[child]))
            child++;
        if (fifo_key(fifo) <= fifo_key(queue->heap[child]))
            break;
        heap_place(queue, index, queue->heap[child]);
        index = child;
    }
    heap_place(queue, index, fifo);
}

static int heap_insert(struct delay_queue *queue, struct delay_fifo *fifo)
{
    if (queue->heap_len == queue->heap_cap) {
        size_t cap = queue->heap_cap ? queue->heap_cap * 2 : 16;
        struct delay_fifo **heap = realloc(queue->heap, cap * sizeof(*heap));
        if (heap == NULL)
            return -1;
        queue->heap = heap;
        queue->heap_cap = cap;
    }
    heap_place(queue, queue->heap_len++, fifo);
    heap_sift_up(queue, fifo->heap_index);
    return 0;
}

static void heap_remove(struct delay_queue *queue, struct delay_fifo *fifo)
{
    size_t index = fifo->heap_index;
    struct delay_fifo *last = queue->heap[--queue->heap_len];
    if (last == fifo)
        return;
    heap_place(queue, index, last);
    heap_sift_down(queue, index);
    heap_sift_up(queue, last->heap_index);
}

/* ---- FIFOs by delay value ---- */

static size_t fifo_bucket_of(const struct delay_queue *queue, uint64_t delay_ns)
{
    /* Fibonacci hashing: delay values are often round numbers of us or ms */
    return (size_t)((delay_ns * 11400714819323198485ull) >> 40) & (queue->fifo_bucket_count - 1);
}

static int fifo_table_grow(struct delay_queue *queue)
{
    size_t count = queue->fifo_bucket_count ? queue->fifo_bucket_count * 2 : 64;
    struct delay_fifo **buckets = calloc(count, sizeof(*buckets));
    if (buckets == NULL)
        return -1;
    size_t old_count = queue->fifo_bucket_count;
    struct delay_fifo **old = queue->fifo_buckets;
    queue->fifo_buckets = buckets;
    queue->fifo_bucket_count = count;
    for (size_t i = 0; i < old_count; i++) {
        for (struct delay_fifo *fifo = old[i], *next; fifo != NULL; fifo = next) {
            next = fifo->hash_next;
            size_t b = fifo_bucket_of(queue, fifo->delay_ns);
            fifo->hash_next = buckets[b];
            buckets[b] = fifo;
        }
    }
    free(old);
    return 0;
}

static struct delay_fifo *fifo_find_or_create(struct delay_queue *queue, uint64_t delay_ns)
{
    size_t b = fifo_bucket_of(queue, delay_ns);
    for (struct delay_fifo *fifo = queue->fifo_buckets[b]; fifo != NULL; fifo = fifo->hash_next)
        if (fifo->delay_ns == delay_ns)
            return fifo;
    if (queue->fifo_count >= queue->fifo_bucket_count) {
        if (fifo_table_grow(queue) != 0)
            return NULL;
        b = fifo_bucket_of(queue, delay_ns);
    }
    struct delay_fifo *fifo = calloc(1, sizeof(*fifo));
    if (fifo == NULL)
        return NULL;
    fifo->delay_ns = delay_ns;
    fifo->hash_next = queue->fifo_buckets[b];
    queue->fifo_buckets[b] = fifo;
    queue->fifo_count++;
    return fifo;
}

static void fifo_destroy(struct delay_queue *queue, struct delay_fifo *fifo)
{
    struct delay_fifo **link = &queue->fifo_buckets[fifo_bucket_of(queue, fifo->delay_ns)];
    while (*link != fifo)
        link = &(*link)->hash_next;
    *link = fifo->hash_next;
    queue->fifo_count--;
    free(fifo);
}

/* An empty FIFO leaves the heap and is freed, so memory follows the delays in use now; the default
 * delay's FIFO is recreated cheaply when traffic resumes. */
static void fifo_release_if_empty(struct delay_queue *queue, struct delay_fifo *fifo)
{
    if (fifo->head != NULL)
        return;
    heap_remove(queue, fifo);
    fifo_destroy(queue, fifo);
}

/* Start times are arrival times, and a worker reads a batch of ready connections in some order of
 * its event loop's (libev walks each batch backwards): entries come in runs, each run in or against
 * due-time order. Searching from the previous push makes either kind of run O(1) per entry. */
static void fifo_insert_sorted(struct delay_queue *queue, struct delay_fifo *fifo, struct delay_entry *entry)
{
    struct delay_entry *after = fifo->last_pushed != NULL ? fifo->last_pushed : fifo->tail;
    if (after->due_ns <= entry->due_ns) {
        while (after->next != NULL && after->next->due_ns <= entry->due_ns)
            after = after->next;
    } else {
        while (after != NULL && after->due_ns > entry->due_ns)
            after = after->prev;
    }
    entry->prev = after;
    entry->next = after != NULL ? after->next : fifo->head;
    if (entry->next != NULL)
        entry->next->prev = entry;
    else
        fifo->tail = entry;
    if (after != NULL) {
        after->next = entry;
    } else {
        fifo->head = entry;
        heap_sift_up(queue, fifo->heap_index); /* the FIFO's key just got earlier */
    }
}

/* ---- the timerfd ---- */

static void timer_arm(struct delay_queue *queue, uint64_t due_ns)
{
    uint64_t lead_ns = queue->use_wake_lead ? queue->wake_lead_ns : 0;
    uint64_t expiry_ns = due_ns > lead_ns ? due_ns - lead_ns : due_ns;
    struct itimerspec spec = {.it_value = {.tv_sec = (time_t)(expiry_ns / NS_PER_SEC), .tv_nsec = (long)(expiry_ns % NS_PER_SEC)}};
    /* Re-arming also resets the expiry count, so a fired timerfd needs no read() when it is re-armed. */
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

/* Keeps the invariant: if anything is queued, the timerfd fires no later than the earliest due time. */
static void timer_update(struct delay_queue *queue, uint64_t now_ns)
{
    uint64_t next = delay_queue_next_due_ns(queue);
    if (next == UINT64_MAX) {
        /* a fired timerfd stays readable until read or re-armed; leave a pending one armed (harmless) */
        if (queue->armed_due_ns != 0 && queue->armed_expiry_ns <= now_ns)
            timer_disarm(queue);
        return;
    }
    if (queue->armed_due_ns == 0 || queue->armed_expiry_ns <= now_ns || next < queue->armed_due_ns)
        timer_arm(queue, next);
}

static void on_timer_readable(struct ev_loop *loop, ev_io *watcher, int revents)
{
    struct delay_queue *queue = watcher->data;
    queue->timer_wakeups++;
    /* Clear the expiry first. Reading after fire_due would be wrong: fire_due may have re-armed for
     * an expiry that is already past (the wake lead), and that read would swallow it, leaving
     * queued entries with no timer. EAGAIN means it was re-armed since epoll saw it: fine. */
    uint64_t expirations;
    if (read(queue->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        return;
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
 * VM. Lowest priority: runs after the worker's own before-block work, which may queue requests. */
static void on_before_block(struct ev_loop *loop, ev_prepare *watcher, int revents)
{
    struct delay_queue *queue = watcher->data;
    queue->blocked_at_ns = clock_monotonic_ns();
    timer_update(queue, queue->blocked_at_ns);
}

/* Measures how busy the worker is, from the time its loop spends blocked. Spinning to due times only
 * pays while the worker is mostly idle: under load most entries leave between connection callbacks,
 * and the early timer wake-ups that remain cost ~5-9 % of the worker's CPU in spins (measured at
 * 1,000 wrk connections), CPU the worker then needs for requests. */
static void on_after_block(struct ev_loop *loop, ev_check *watcher, int revents)
{
    struct delay_queue *queue = watcher->data;
    uint64_t now_ns = clock_monotonic_ns();
    queue->window_blocked_ns += now_ns - queue->blocked_at_ns;
    uint64_t window_ns = now_ns - queue->window_start_ns;
    if (window_ns < DELAY_BUSY_WINDOW_NS)
        return;
    uint64_t busy_ns = window_ns > queue->window_blocked_ns ? window_ns - queue->window_blocked_ns : 0;
    queue->use_wake_lead = busy_ns * 100 < window_ns * DELAY_SPIN_MAX_BUSY_PCT;
    queue->window_start_ns = now_ns;
    queue->window_blocked_ns = 0;
}

/* ---- public ---- */

int delay_queue_init(struct delay_queue *queue, struct ev_loop *loop)
{
    memset(queue, 0, sizeof(*queue));
    queue->loop = loop;
    queue->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (queue->timer_fd < 0)
        return -1;
    if (fifo_table_grow(queue) != 0) {
        close(queue->timer_fd);
        errno = ENOMEM;
        return -1;
    }
    ev_io_init(&queue->timer_watcher, on_timer_readable, queue->timer_fd, EV_READ);
    queue->timer_watcher.data = queue;
    ev_io_start(loop, &queue->timer_watcher);
    ev_prepare_init(&queue->before_block_watcher, on_before_block);
    queue->before_block_watcher.data = queue;
    ev_set_priority(&queue->before_block_watcher, EV_MINPRI);
    ev_prepare_start(loop, &queue->before_block_watcher);
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
    ev_prepare_stop(queue->loop, &queue->before_block_watcher);
    ev_check_stop(queue->loop, &queue->after_block_watcher);
    close(queue->timer_fd);
    for (size_t i = 0; i < queue->fifo_bucket_count; i++) {
        for (struct delay_fifo *fifo = queue->fifo_buckets[i], *next; fifo != NULL; fifo = next) {
            next = fifo->hash_next;
            for (struct delay_entry *e = fifo->head; e != NULL; e = e->next)
                e->fifo = NULL;
            free(fifo);
        }
    }
    free(queue->fifo_buckets);
    free(queue->heap);
    memset(queue, 0, sizeof(*queue));
    queue->timer_fd = -1;
}

uint64_t delay_queue_next_due_ns(const struct delay_queue *queue)
{
    return queue->heap_len ? fifo_key(queue->heap[0]) : UINT64_MAX;
}

int delay_queue_push(struct delay_queue *queue, struct delay_entry *entry, uint64_t delay_ns, uint64_t start_ns)
{
    struct delay_fifo *fifo = fifo_find_or_create(queue, delay_ns);
    if (fifo == NULL)
        return -1;
    entry->due_ns = start_ns + delay_ns;
    entry->fifo = fifo;
    if (fifo->tail == NULL) {
        entry->next = entry->prev = NULL;
        fifo->head = fifo->tail = entry;
        if (heap_insert(queue, fifo) != 0) {
            fifo->head = fifo->tail = NULL;
            entry->fifo = NULL;
            fifo_destroy(queue, fifo);
            return -1;
        }
    } else {
        fifo_insert_sorted(queue, fifo, entry);
    }
    fifo->last_pushed = entry;
    queue->queued++;
    return 0;
}

void delay_queue_cancel(struct delay_queue *queue, struct delay_entry *entry)
{
    struct delay_fifo *fifo = entry->fifo;
    if (fifo == NULL)
        return;
    bool was_head = fifo->head == entry;
    if (fifo->last_pushed == entry)
        fifo->last_pushed = NULL;
    if (entry->prev != NULL)
        entry->prev->next = entry->next;
    else
        fifo->head = entry->next;
    if (entry->next != NULL)
        entry->next->prev = entry->prev;
    else
        fifo->tail = entry->prev;
    entry->fifo = NULL;
    entry->next = entry->prev = NULL;
    queue->queued--;
    if (fifo->head == NULL)
        fifo_release_if_empty(queue, fifo);
    else if (was_head)
        heap_sift_down(queue, fifo->heap_index); /* the new head is due later */
    /* an early timer wake-up costs less than re-arming on every cancel: leave the timer alone */
}

void delay_queue_fire_due(struct delay_queue *queue)
{
    uint64_t now_ns = clock_monotonic_ns();
    while (queue->heap_len != 0) {
        struct delay_fifo *fifo = queue->heap[0];
        struct delay_entry *entry = fifo->head;
        if (entry->due_ns > now_ns) {
            /* callbacks take time: look at the clock again before deciding to stop */
            now_ns = clock_monotonic_ns();
            if (entry->due_ns > now_ns)
                break;
        }
        fifo->head = entry->next;
        if (fifo->last_pushed == entry)
            fifo->last_pushed = NULL;
        if (fifo->head != NULL) {
            fifo->head->prev = NULL;
            heap_sift_down(queue, 0);
        } else {
            fifo->tail = NULL;
            fifo_release_if_empty(queue, fifo);
        }
        entry->fifo = NULL;
        entry->next = entry->prev = NULL;
        queue->queued--;
        entry->on_due(entry, now_ns);
    }
}
