/* arrival: when a request reached the host, from the kernel's receive timestamp.
 *
 * The kernel stamps received data with the wall clock (CLOCK_REALTIME); delays run on
 * CLOCK_MONOTONIC. A stamp is converted by its age (wall clock now minus stamp) subtracted from the
 * monotonic clock now. If the wall clock steps (NTP, an admin) between a stamp and its read, that age
 * is wrong, so every conversion compares the two clocks' offset with the previous one, and no arrival
 * is placed before the last step seen: an arrival can come out later than the truth, never earlier,
 * so a response is never early. */
#ifndef MOCKUPSTREAM_ARRIVAL_H
#define MOCKUPSTREAM_ARRIVAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A change of CLOCK_REALTIME - CLOCK_MONOTONIC larger than this between two conversions counts as a
 * step. NTP slews at most 0.05 %, i.e. this much in 200 ms: an idle gap longer than that may count as
 * a step, which only costs the next request its stamp. */
#define ARRIVAL_WALL_STEP_NS 100000ll

struct arrival_clock {
    int64_t wall_offset_ns;   /* CLOCK_REALTIME - CLOCK_MONOTONIC at the last conversion */
    uint64_t step_seen_ns;    /* CLOCK_MONOTONIC when that offset last jumped */
    int has_offset;
};

/* Records the clocks read now (wall clock first, then monotonic) and returns the arrival, in
 * CLOCK_MONOTONIC ns, of data stamped `stamp_wall_ns` (0: no stamp, the arrival is now). */
uint64_t arrival_from_wall_stamp(struct arrival_clock *clock, uint64_t stamp_wall_ns, uint64_t wall_now_ns,
                                 uint64_t mono_now_ns);

/* What a worker's reads record: the clock state and when the last bytes read reached the host. */
struct arrival_reader {
    struct arrival_clock clock;
    uint64_t last_arrival_ns; /* CLOCK_MONOTONIC, of the last successful arrival_recv */
};

/* recv() on a socket whose listener set SO_TIMESTAMPNS (accepted sockets inherit it), recording
 * in reader->last_arrival_ns when the last byte read reached the host. Under load a request can sit
 * in its socket for milliseconds while the worker serves a batch of others; a delay runs from the
 * arrival, so that wait is not added to what the client sees (it shows as lateness instead).
 * Without a stamp the arrival is now. Returns what recv() returns, errno set as recv() sets it. */
ssize_t arrival_recv(struct arrival_reader *reader, int fd, void *buf, size_t size);

#endif
