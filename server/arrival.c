#include "arrival.h"

#include <stdlib.h>

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
