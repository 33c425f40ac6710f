/* clock: the one monotonic time source, in integer nanoseconds.
 *
 * Delays, lateness and timers all use CLOCK_MONOTONIC ns; libev's double seconds are converted only
 * in the few places that arm libev timers (see clock_ns_to_ev_seconds). */
#ifndef MOCKUPSTREAM_CLOCK_H
#define MOCKUPSTREAM_CLOCK_H

#include <stdint.h>
#include <time.h>

#define NS_PER_US 1000ull
#define NS_PER_MS 1000000ull
#define NS_PER_SEC 1000000000ull

static inline uint64_t clock_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline double clock_ns_to_ev_seconds(uint64_t ns)
{
    return (double)ns / (double)NS_PER_SEC;
}

#endif
