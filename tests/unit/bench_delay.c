/* bench_delay: CPU ns per request (one push and one fire), per push, per fire and per cancel of the
 * delay queue with 100,000 requests held, in steady state, for a few delay distributions. Not a test:
 * `make bench-delay` builds and runs it; `bench_delay bd` runs scenarios (b) and (d) only.
 *
 * The queue is compiled into this file with a virtual clock (clock.h is pre-empted below), so time
 * advances only as the simulation says: arrivals come at the rate that holds HELD requests by
 * Little's law (held / mean delay), in batches of BATCH whose start times are pushed newest first
 * (libev walks a batch of ready connections backwards); after each PHASE of arrivals the queue fires
 * what the virtual clock says is due, and each fired entry is pushed again as a later arrival.
 * Times are the thread's CPU time, but caches are shared: on a busy machine take the minimum of a
 * few runs, or count instructions and cache misses with valgrind --tool=callgrind --cache-sim=yes.
 *
 * To compare another implementation of the same API (the previous one, say), compile this file with
 * that directory first on the quote path:
 *   mkdir /tmp/old && git show HEAD:server/delay.c >/tmp/old/delay.c && git show HEAD:server/delay.h >/tmp/old/delay.h
 *   cc -std=gnu11 -O2 -D_GNU_SOURCE -iquote /tmp/old -Iserver -o /tmp/bench_old tests/unit/bench_delay.c -lev -ljemalloc -lm */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the virtual clock, in place of server/clock.h */
#define MOCKUPSTREAM_CLOCK_H
#define NS_PER_US 1000ull
#define NS_PER_MS 1000000ull
#define NS_PER_SEC 1000000000ull
static uint64_t bench_virtual_now_ns;
static inline uint64_t clock_monotonic_ns(void)
{
    return bench_virtual_now_ns;
}

#include "delay.c"

enum { HELD = 100000, BATCH = 16, PHASE = 4096, SPARE = HELD / 2, MEASURED_PUSHES = 1000000, CANCELS = 50000 };

/* In the server an entry lives inside a connection or stream object of hundreds of bytes, so two
 * entries never share a cache line; packed together they would, and a queue whose order follows
 * memory order would look better than it is. */
struct bench_entry {
    struct delay_entry entry; /* first: the queue hands back this pointer */
    struct bench_entry *next_free;
    bool picked; /* for cancellation */
    char rest_of_the_request[192];
};

static struct bench_entry *free_list;
static uint64_t fired_count;

static void on_due(struct delay_entry *entry, uint64_t now_ns)
{
    struct bench_entry *e = (struct bench_entry *)entry;
    e->next_free = free_list;
    free_list = e;
    fired_count++;
}

static uint64_t rng_state = 42;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(void) /* (0, 1) */
{
    return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

enum distribution { FIXED_10MS, TWO_FIXED_10_25MS, UNIFORM_1_100MS, LOGNORMAL_5MS_P99_20MS };

static const char *distribution_name[] = {
    [FIXED_10MS] = "(a) fixed 10 ms",
    [TWO_FIXED_10_25MS] = "(d) 10 ms / 25 ms, half each",
    [UNIFORM_1_100MS] = "(b) uniform 1..100 ms (ns steps)",
    [LOGNORMAL_5MS_P99_20MS] = "(c) lognormal p50 5 ms, p99 20 ms",
};

static uint64_t draw_delay_ns(enum distribution d)
{
    switch (d) {
    case FIXED_10MS:
        return 10 * NS_PER_MS;
    case TWO_FIXED_10_25MS:
        return rng_next() & 1 ? 10 * NS_PER_MS : 25 * NS_PER_MS;
    case UNIFORM_1_100MS:
        return NS_PER_MS + rng_next() % (99 * NS_PER_MS + 1);
    case LOGNORMAL_5MS_P99_20MS: {
        /* sigma = ln(p99 / p50) / z(0.99) */
        double sigma = log(4.0) / 2.326348, normal = sqrt(-2.0 * log(rng_unit())) * cos(2 * M_PI * rng_unit());
        return (uint64_t)(5e6 * exp(sigma * normal));
    }
    }
    return 0;
}

static double mean_delay_ns(enum distribution d)
{
    switch (d) {
    case FIXED_10MS:
        return 10e6;
    case TWO_FIXED_10_25MS:
        return 17.5e6;
    case UNIFORM_1_100MS:
        return 50.5e6;
    case LOGNORMAL_5MS_P99_20MS:
        return 5e6 * exp(pow(log(4.0) / 2.326348, 2) / 2);
    }
    return 1;
}

/* Delays are drawn before the clock starts (a lognormal draw costs more than a push): DRAWS of
 * them, reused in a cycle. */
enum { DRAWS = 1 << 20 };
static uint64_t draws_ns[DRAWS];
static size_t draw_next;

/* CPU time of this thread: time the machine gave to other processes is not counted. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

struct timing {
    uint64_t fire_ns, push_ns, pushes, fired;
};

/* One phase: PHASE arrivals are pushed (in batches of BATCH, newest first) as the virtual clock
 * moves on, then what the clock says is due fires. Pushes and fires are timed apart, each over the
 * whole phase, so a clock read costs nothing per operation. */
static void run_phase(struct delay_queue *queue, double gap_ns, double *virtual_ns, struct timing *t)
{
    uint64_t t0 = cpu_ns();
    for (int b = 0; b < PHASE / BATCH; b++) {
        double batch_start_ns = *virtual_ns;
        *virtual_ns += gap_ns * BATCH;
        bench_virtual_now_ns = (uint64_t)*virtual_ns;
        for (int i = 0; i < BATCH; i++) {
            struct bench_entry *e = free_list;
            free_list = e->next_free;
            e->entry.on_due = on_due;
            uint64_t start_ns = (uint64_t)(batch_start_ns + gap_ns * (BATCH - i)); /* newest first */
            if (start_ns > bench_virtual_now_ns)
                start_ns = bench_virtual_now_ns;
            if (delay_queue_push(queue, &e->entry, draws_ns[draw_next], start_ns) != 0) {
                fprintf(stderr, "push failed\n");
                exit(1);
            }
            draw_next = (draw_next + 1) & (DRAWS - 1);
        }
    }
    uint64_t t1 = cpu_ns();
    uint64_t fired_before = fired_count;
    delay_queue_fire_due(queue);
    uint64_t t2 = cpu_ns();
    t->push_ns += t1 - t0;
    t->fire_ns += t2 - t1;
    t->pushes += PHASE;
    t->fired += fired_count - fired_before;
}

static void bench(enum distribution d)
{
    struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
    struct delay_queue queue;
    bench_virtual_now_ns = 1000 * NS_PER_SEC;
    if (delay_queue_init(&queue, loop) != 0) {
        perror("delay_queue_init");
        exit(1);
    }
    struct bench_entry *entries = calloc(HELD + SPARE, sizeof(*entries));
    free_list = NULL;
    for (size_t i = HELD + SPARE; i-- > 0;) {
        entries[i].next_free = free_list;
        free_list = &entries[i];
    }
    for (size_t i = 0; i < DRAWS; i++)
        draws_ns[i] = draw_delay_ns(d);
    draw_next = 0;
    double gap_ns = mean_delay_ns(d) / HELD, virtual_ns = (double)bench_virtual_now_ns;
    struct timing warm = {0}, measured = {0};
    /* warm up to the steady state: three longest delays of virtual time */
    while (virtual_ns < (double)(1000 * NS_PER_SEC + 300 * NS_PER_MS))
        run_phase(&queue, gap_ns, &virtual_ns, &warm);
    size_t held_at_start = queue.queued;
    while (measured.pushes < MEASURED_PUSHES)
        run_phase(&queue, gap_ns, &virtual_ns, &measured);
    double push_each = (double)measured.push_ns / (double)measured.pushes;
    double fire_each = (double)measured.fire_ns / (double)measured.fired;
    /* cancels of held entries in random order (picked before the clock starts) */
    enum { CANCEL_GROUP = 1024 };
    uint64_t cancel_ns = 0, cancels = 0;
    static struct bench_entry *picked[CANCEL_GROUP];
    while (cancels < CANCELS) {
        int n = 0;
        while (n < CANCEL_GROUP) {
            struct bench_entry *e = &entries[rng_next() % (HELD + SPARE)];
            if (delay_entry_is_queued(&e->entry) && !e->picked) {
                e->picked = true;
                picked[n++] = e;
            }
        }
        uint64_t c0 = cpu_ns();
        for (int k = 0; k < CANCEL_GROUP; k++)
            delay_queue_cancel(&queue, &picked[k]->entry);
        cancel_ns += cpu_ns() - c0;
        cancels += CANCEL_GROUP;
    }
    double cancel_each = (double)cancel_ns / (double)cancels;
    printf("%-34s held %6zu  request %6.1f ns = push %6.1f + fire %6.1f  cancel %6.1f ns", distribution_name[d],
           held_at_start, push_each + fire_each, push_each, fire_each, cancel_each);
    printf("\n");
    delay_queue_dispose(&queue);
    free(entries);
    ev_loop_destroy(loop);
}

/* Arguments: the scenarios to run, by letter (default: all). */
int main(int argc, char **argv)
{
    printf("bench_delay: %d held, batches of %d, %d pushes measured, thread CPU time\n", HELD, BATCH, MEASURED_PUSHES);
    enum distribution order[] = {FIXED_10MS, UNIFORM_1_100MS, LOGNORMAL_5MS_P99_20MS, TWO_FIXED_10_25MS};
    const char letters[] = "abcd";
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (argc < 2 || strchr(argv[1], letters[i]) != NULL)
            bench(order[i]);
    return 0;
}
