#include "arrival.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "clock.h"

uint64_t arrival_from_wall_stamp(struct arrival_clock *clock, uint64_t stamp_wall_ns, uint64_t wall_now_ns,
                                 uint64_t mono_now_ns)
{
    int64_t offset_ns = (int64_t)(wall_now_ns - mono_now_ns);
    if (!clock->has_offset || llabs(offset_ns - clock->wall_offset_ns) > ARRIVAL_WALL_STEP_NS)
        clock->step_seen_ns = mono_now_ns;
    clock->wall_offset_ns = offset_ns;
    clock->has_offset = 1;
    /* no stamp, a stamp from the future (a step back), or one older than the monotonic clock itself */
    if (stamp_wall_ns == 0 || stamp_wall_ns >= wall_now_ns || wall_now_ns - stamp_wall_ns >= mono_now_ns)
        return mono_now_ns;
    uint64_t arrival_ns = mono_now_ns - (wall_now_ns - stamp_wall_ns);
    return arrival_ns > clock->step_seen_ns ? arrival_ns : clock->step_seen_ns;
}

ssize_t arrival_recv(struct arrival_reader *reader, int fd, void *buf, size_t size)
{
    struct iovec iov = {buf, size};
    union {
        char bytes[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes, .msg_controllen = sizeof(control.bytes)};
    ssize_t n = recvmsg(fd, &msg, 0);
    if (n <= 0)
        return n;
    uint64_t stamp_ns = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            stamp_ns = (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
        }
    }
    uint64_t wall_now_ns = clock_realtime_ns(); /* first: an age measured this way can only come out short */
    reader->last_arrival_ns = arrival_from_wall_stamp(&reader->clock, stamp_ns, wall_now_ns, clock_monotonic_ns());
    return n;
}
