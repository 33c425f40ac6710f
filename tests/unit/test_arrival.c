/* Unit tests for server/arrival.c: converting kernel receive stamps (wall clock) to CLOCK_MONOTONIC
 * arrivals, and never placing an arrival before a wall-clock step. Clock values are made up, so every
 * case is exact. */
#include "arrival.h"
#include "unit.h"

#define MS 1000000ull
#define WALL0 (1700000000ull * 1000000000ull) /* some wall time */
#define MONO0 (5000ull * MS)                  /* some monotonic time */

/* A clock that has already seen the offset WALL0 - MONO0 for a while. */
static struct arrival_clock settled(void)
{
    struct arrival_clock clock = {0};
    arrival_from_wall_stamp(&clock, 0, WALL0 - 500 * MS, MONO0 - 500 * MS);
    return clock;
}

static void test_first_read_has_no_history(void)
{
    struct arrival_clock clock = {0};
    /* the offset was never seen: a step cannot be ruled out, so the arrival is now */
    CHECK(arrival_from_wall_stamp(&clock, WALL0 - 3 * MS, WALL0, MONO0) == MONO0);
}

static void test_stamp_age_moves_the_arrival_back(void)
{
    struct arrival_clock clock = settled();
    CHECK(arrival_from_wall_stamp(&clock, WALL0 - 3 * MS, WALL0, MONO0) == MONO0 - 3 * MS);
    CHECK(arrival_from_wall_stamp(&clock, WALL0 + MS - 1, WALL0 + MS, MONO0 + MS) == MONO0 + MS - 1);
    /* 250 ms in the socket (a worker far behind): still exact */
    CHECK(arrival_from_wall_stamp(&clock, WALL0 + 2 * MS - 250 * MS, WALL0 + 2 * MS, MONO0 + 2 * MS) == MONO0 - 248 * MS);
}

static void test_missing_or_impossible_stamps_mean_now(void)
{
    struct arrival_clock clock = settled();
    CHECK(arrival_from_wall_stamp(&clock, 0, WALL0, MONO0) == MONO0);
    CHECK(arrival_from_wall_stamp(&clock, WALL0 + 5 * MS, WALL0, MONO0) == MONO0); /* from the future */
    CHECK(arrival_from_wall_stamp(&clock, 1, WALL0, MONO0) == MONO0);              /* before boot */
}

static void test_wall_clock_step_forward_never_makes_an_arrival_early(void)
{
    struct arrival_clock clock = settled();
    CHECK(arrival_from_wall_stamp(&clock, WALL0 - MS, WALL0, MONO0) == MONO0 - MS);
    /* the wall clock jumps 2 s ahead; a request stamped 1 ms before the jump is read 1 ms after it:
     * its apparent age is 2.002 s, the truth 2 ms. It must not come out 2 s early. */
    uint64_t mono = MONO0 + 2 * MS, wall = WALL0 + 2000 * MS + 2 * MS;
    uint64_t arrival = arrival_from_wall_stamp(&clock, WALL0 + MS, wall, mono);
    CHECK(arrival == mono); /* the step is seen on this read: nothing before it is trusted */
    /* later stamps, taken after the step, are exact again... */
    CHECK(arrival_from_wall_stamp(&clock, wall + MS, wall + 3 * MS, mono + 3 * MS) == mono + MS);
    /* ...and none is placed before the step was seen */
    CHECK(arrival_from_wall_stamp(&clock, wall - 5 * MS, wall + 4 * MS, mono + 4 * MS) == mono);
}

static void test_wall_clock_step_back(void)
{
    struct arrival_clock clock = settled();
    /* the wall clock goes back 1 s: old stamps look like the future (now), later ones are exact */
    uint64_t mono = MONO0 + MS, wall = WALL0 + MS - 1000 * MS;
    CHECK(arrival_from_wall_stamp(&clock, WALL0, wall, mono) == mono);
    CHECK(arrival_from_wall_stamp(&clock, wall + MS, wall + 2 * MS, mono + 2 * MS) == mono + MS);
}

static void test_slew_is_not_a_step(void)
{
    struct arrival_clock clock = settled();
    /* NTP slewing 0.05 %: 50 us over 100 ms between reads */
    CHECK(arrival_from_wall_stamp(&clock, WALL0 + 100 * MS + 50000 - MS, WALL0 + 100 * MS + 50000, MONO0 + 100 * MS) ==
          MONO0 + 99 * MS);
}

int main(void)
{
    RUN(test_first_read_has_no_history);
    RUN(test_stamp_age_moves_the_arrival_back);
    RUN(test_missing_or_impossible_stamps_mean_now);
    RUN(test_wall_clock_step_forward_never_makes_an_arrival_early);
    RUN(test_wall_clock_step_back);
    RUN(test_slew_is_not_a_step);
    return unit_finish();
}
