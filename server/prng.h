/* prng: the per-worker pseudo-random stream that per-request distributions draw from.
 *
 * xoshiro256** (Blackman and Vigna, 2018): 256 bits of state, period 2^256 - 1, ~1 ns per draw, and
 * a jump function that advances a state by exactly 2^128 draws. Not for secrets: it only decides
 * which delay, status or size a request gets.
 *
 * Streams: prng_seed(seed, stream) expands `seed` into a state with splitmix64 (so nearby seeds give
 * unrelated states), then jumps it `stream` times. Worker k seeded with (seed, k) therefore draws the
 * numbers k x 2^128 .. (k + 1) x 2^128 - 1 of one sequence: the streams of different workers never
 * overlap, and the same (seed, stream) gives the same numbers on every run and machine. What is
 * repeatable is each worker's sequence of draws; which request gets which draw still depends on
 * arrival order. A worker restarted with the same stream index replays its stream from the start;
 * a caller that wants fresh numbers after a restart passes a different index (e.g. index + workers x
 * generation). Seeding costs ~stream x 1 us (each jump is 256 draws).
 *
 * Without a user seed, prng_os_seed reads one from getrandom(2): the caller should print it so that a
 * run worth repeating can be repeated with --seed. */
#ifndef MOCKUPSTREAM_PRNG_H
#define MOCKUPSTREAM_PRNG_H

#include <stdint.h>

/* One stream. Owned by one worker (not thread-safe); plain data, copyable. */
struct prng {
    uint64_t s[4];
};

/* Sets *p to stream `stream` of `seed` (see above). Every seed, 0 included, gives a valid state. */
void prng_seed(struct prng *p, uint64_t seed, uint32_t stream);

/* Advances *p by 2^128 draws. */
void prng_jump(struct prng *p);

/* Reads a seed from the kernel (getrandom). Returns 0 and sets *out_seed, or -1 with errno set. */
int prng_os_seed(uint64_t *out_seed);

/* One step of splitmix64 (Steele, Lea, Flood 2014): advances *state, returns a well-mixed value. */
uint64_t prng_splitmix64(uint64_t *state);

static inline uint64_t prng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* The next 64 random bits. */
static inline uint64_t prng_next(struct prng *p)
{
    uint64_t *s = p->s;
    uint64_t result = prng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = prng_rotl(s[3], 45);
    return result;
}

/* A uniform integer in [0, n) (n >= 1). Multiply-shift, not modulo: the bias is below n / 2^64,
 * which for any n this project uses (at most ~2^47) is far below what 10^9 draws could show. */
static inline uint64_t prng_below(struct prng *p, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)prng_next(p) * n) >> 64);
}

/* A uniform double in the open interval (0, 1): 53 random bits, offset by half a step so neither 0
 * nor 1 comes out (log(0) and the inverse normal CDF at 0 or 1 are infinite). */
static inline double prng_unit_open(struct prng *p)
{
    return ((double)(prng_next(p) >> 11) + 0.5) * 0x1p-53;
}

#endif
