#include "prng.h"

#include <errno.h>
#include <sys/random.h>

uint64_t prng_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* splitmix64 is a bijection of its counter, so four consecutive outputs are never all zero: the one
 * state xoshiro cannot leave is unreachable from any seed. */
void prng_seed(struct prng *p, uint64_t seed, uint32_t stream)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        p->s[i] = prng_splitmix64(&x);
    for (uint32_t k = 0; k < stream; k++)
        prng_jump(p);
}

/* The published jump polynomial: the state after it equals the state after 2^128 calls of next. */
void prng_jump(struct prng *p)
{
    static const uint64_t jump[4] = {0x180ec6d33cfd0abaull, 0xd5a61266f0c9392cull, 0xa9582618e03fc9aaull,
                                     0x39abdc4529b1661cull};
    uint64_t acc[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        for (int b = 0; b < 64; b++) {
            if (jump[i] & (1ull << b)) {
                for (int w = 0; w < 4; w++)
                    acc[w] ^= p->s[w];
            }
            (void)prng_next(p);
        }
    }
    for (int w = 0; w < 4; w++)
        p->s[w] = acc[w];
}

int prng_os_seed(uint64_t *out_seed)
{
    uint64_t seed;
    ssize_t n;
    /* 8 bytes never come back short once the pool is ready; EINTR only while it is not */
    do
        n = getrandom(&seed, sizeof(seed), 0);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(seed)) {
        if (n >= 0)
            errno = EIO;
        return -1;
    }
    *out_seed = seed;
    return 0;
}
