/* khash.h: the part of klib's khash that <h2o/http2_internal.h> needs, so that header can be used.
 *
 * h2o 2.2.5 keeps an HTTP/2 connection's streams in a khash table (klib khash 0.2.8, bundled as
 * deps/klib/khash.h); Debian installs http2_internal.h but not khash.h. This file is found instead
 * (the -Iserver path) and gives the same table layout and the same lookup (hash, probing, bucket
 * flags), read-only: h2o owns the tables, the project only finds and visits streams in them. It is
 * written for h2o_limits.c, the file that touches those internals; if libh2o changes its klib, this
 * must follow. */
#ifndef MOCKUPSTREAM_KHASH_SHIM_H
#define MOCKUPSTREAM_KHASH_SHIM_H

#include <stdint.h>

typedef uint32_t khint32_t;
typedef uint64_t khint64_t;
typedef khint32_t khint_t;
typedef khint_t khiter_t;

/* Two flag bits per bucket, 16 buckets per 32-bit word: bit 1 "empty", bit 0 "deleted". */
#define kh__flags_of(h, i) (((h)->flags[(i) >> 4] >> (((i)&0xfU) << 1)) & 3U)
#define kh__is_empty(h, i) ((kh__flags_of(h, i) & 2U) != 0)
#define kh__is_deleted(h, i) ((kh__flags_of(h, i) & 1U) != 0)

#define kh_int64_hash_func(key) (khint32_t)((key) >> 33 ^ (key) ^ (key) << 11)

/* The map type h2o instantiates, and a lookup that probes as klib's kh_get does: start at the hash
 * bucket, step by 1, 2, 3, ... (triangular numbers), stop at an empty bucket or after a full circle. */
#define KHASH_MAP_INIT_INT64(name, khval_t)                                                                                        \
    typedef struct kh_##name##_s {                                                                                                 \
        khint_t n_buckets, size, n_occupied, upper_bound;                                                                          \
        khint32_t *flags;                                                                                                          \
        khint64_t *keys;                                                                                                           \
        khval_t *vals;                                                                                                             \
    } kh_##name##_t;                                                                                                               \
    static inline khint_t kh_get_##name(const kh_##name##_t *h, khint64_t key)                                                     \
    {                                                                                                                              \
        if (h->n_buckets == 0)                                                                                                     \
            return 0;                                                                                                              \
        khint_t mask = h->n_buckets - 1, step = 0;                                                                                 \
        khint_t i = kh_int64_hash_func(key) & mask, last = i;                                                                      \
        while (!kh__is_empty(h, i) && (kh__is_deleted(h, i) || h->keys[i] != key)) {                                               \
            i = (i + (++step)) & mask;                                                                                             \
            if (i == last)                                                                                                         \
                return h->n_buckets;                                                                                               \
        }                                                                                                                          \
        return kh__flags_of(h, i) != 0 ? h->n_buckets : i;                                                                         \
    }

#define khash_t(name) kh_##name##_t
#define kh_get(name, h, k) kh_get_##name(h, k)
#define kh_end(h) ((h)->n_buckets)
#define kh_exist(h, x) (kh__flags_of(h, x) == 0)
#define kh_val(h, x) ((h)->vals[x])

/* Runs `code` with `vvar` set to each value in the table. */
#define kh_foreach_value(h, vvar, code)                                                                                            \
    {                                                                                                                              \
        for (khint_t kh__i = 0; kh__i != kh_end(h); ++kh__i) {                                                                     \
            if (!kh_exist(h, kh__i))                                                                                               \
                continue;                                                                                                          \
            (vvar) = kh_val(h, kh__i);                                                                                             \
            code;                                                                                                                  \
        }                                                                                                                          \
    }

#endif
