/* distribution: a per-request value (a delay, a status code or a body size) given as one value, a
 * weighted list or a random distribution. Parsed from text without allocating (distribution_parse.c),
 * sampled from a worker's prng and described back in canonical text (distribution.c). No I/O, no
 * global state.
 *
 * Syntax (the same for query parameters, X-Mock-* headers and flags):
 *
 *   spec   := item (',' item)*                      at most DISTRIBUTION_MAX_ITEMS items
 *   item   := body [':' weight]
 *   body   := value | shape
 *   weight := percent of all draws, 0..100, up to 4 decimals ("10", "0.5", "0.0001")
 *   shape  := uniform:<lo>..<hi>                    every integer in [lo, hi] equally likely
 *           | normal:mean=<v>,sd=<v>                 truncated at 0 (see below)
 *           | lognormal:p50=<v>,p99=<v>              median and 99th percentile
 *           | pareto:min=<v>,alpha=<number>          P(X > x) = (min / x)^alpha for x >= min
 *           | pareto:p50=<v>,p99=<v>                 the same family, given by two percentiles
 *
 * Values: a delay is a duration as duration_parse_ns reads it (250us, 1.5ms, 2s; a bare number is
 * ms); a size is bytes as size_parse_bytes reads it (1024, 64k, 1m, 64KiB; k, m, g are powers of
 * 1024); a status is an integer 100..599. Shapes are for delays and sizes, not status codes.
 *
 * Examples:
 *   25ms                              always 25 ms
 *   150us:10,2ms:5                    10 % 150 us, 5 % 2 ms, 85 % the caller's default (Fortio's form)
 *   503:5,500:0.5                     5 % 503, 0.5 % 500, the rest the default status
 *   uniform:5ms..15ms
 *   normal:mean=10ms,sd=2ms
 *   lognormal:p50=10ms,p99=50ms
 *   pareto:min=5ms,alpha=1.5          heavy tail: p50 7.9 ms, p99 108 ms, p99.9 500 ms
 *   2ms:90,lognormal:p50=5ms,p99=20ms:10    a mix: 90 % 2 ms, 10 % lognormal
 *   lognormal:p50=1k,p99=64k          body sizes
 *
 * The comma inside a shape's parameters is the comma that separates items; it is unambiguous
 * because a parameter is `name=` and an item never is: after a comma, `name=` continues the current
 * shape, anything else (a value, or `name:`) starts the next item. `;` may separate parameters too
 * (`lognormal:p50=5ms;p99=20ms`), for readers who prefer to see where a mix's items end. Spaces and
 * tabs are allowed around the ',' and ';' separators and around the whole value (header lists are
 * often written `a, b`), nowhere else. Names are matched without regard to case; parameters may come
 * in any order. A query string carries the text percent-decoded by the caller (`,` `:` `;` `=` need
 * no encoding there; a literal space does).
 *
 * Weights: a lone item without a weight has all of it; in a list of two or more, every item has a
 * weight. Weights add up to at most 100; the rest (100 - sum) goes to the caller's default.
 *
 * Bounds: every value written must lie in 0..max (the caller's maximum: --max-delay for delays,
 * --max-response-size for sizes; status codes in 100..599). Shapes without an upper end (normal,
 * lognormal, pareto) are capped at max: a draw above it returns max (with lognormal p99 = max, ~1 %
 * of draws are max). normal is truncated at 0, not clamped: it is the normal conditioned on >= 0
 * (drawn by inverse CDF, no rejection loop), so with mean >> sd it is the normal, and with mean = 0
 * it is the half-normal; no mass piles up at 0.
 *
 * Canonical text (distribution_describe): items in the order given, values in exact form
 * (duration_format_exact, size_format_exact), parameters in the order of the grammar above joined
 * by ',', weights without trailing zeros, and a lone item's ":100" left out. parse(describe(d))
 * equals d.
 *
 * Cost: parsing is O(len) (each byte is looked at a bounded number of times): 25 ns for "25ms",
 * 110 ns for a lognormal, 220 ns for a two-item mix; a draw is one or two prng steps and, for normal,
 * lognormal and pareto, a log or exp: 5-10 ns (fixed, list, uniform), 25-35 ns (the others); measured
 * -O2 on this project's 2-core machine. A lone fixed value or an empty distribution draws nothing
 * from the prng. */
#ifndef MOCKUPSTREAM_DISTRIBUTION_H
#define MOCKUPSTREAM_DISTRIBUTION_H

#include <stddef.h>
#include <stdint.h>

#include "prng.h"

#define DISTRIBUTION_MAX_ITEMS 16

/* Weights are kept in parts per million of all draws (percent x 10^4): 100 % is this. */
#define DISTRIBUTION_WEIGHT_FULL_PPM 1000000u

/* A larger caller maximum is lowered to this (2^53 ns is 104 days, 2^53 bytes 8 PiB): values stay
 * exact as doubles and uniform's hi - lo + 1 cannot overflow. */
#define DISTRIBUTION_VALUE_LIMIT (1ull << 53)

/* Room for any error distribution_parse writes, with the NUL (messages are shorter: they are cut
 * to fit a smaller buffer, never overrun it). */
#define DISTRIBUTION_ERROR_BYTES 256

/* Room for the canonical text of any distribution, with the NUL. */
#define DISTRIBUTION_DESCRIBE_BYTES 1024

/* distribution_draw's answer when the draw fell in the weight left to the caller's default. */
#define DISTRIBUTION_REST 1

enum distribution_unit {
    DISTRIBUTION_NS,     /* delays, in nanoseconds */
    DISTRIBUTION_STATUS, /* HTTP status codes, 100..599 */
    DISTRIBUTION_BYTES,  /* body sizes, in bytes */
};

enum distribution_shape {
    DISTRIBUTION_FIXED,
    DISTRIBUTION_UNIFORM,
    DISTRIBUTION_NORMAL,
    DISTRIBUTION_LOGNORMAL,
    DISTRIBUTION_PARETO_MIN_ALPHA,
    DISTRIBUTION_PARETO_P50_P99,
};

struct distribution_item {
    uint8_t shape;       /* enum distribution_shape */
    uint32_t weight_ppm; /* share of all draws, in millionths */
    /* As written, in the unit of the distribution: fixed: a; uniform: lo a, hi b; normal: mean a,
     * sd b; lognormal and pareto by percentiles: p50 a, p99 b; pareto: min a, alpha x 10^4 b. */
    uint64_t a, b;
    /* Derived when parsed: normal: x = the normal CDF at 0; lognormal: x = mu, y = sigma (of the
     * log of the value); pareto: x = min, y = -1 / alpha. */
    double x, y;
};

/* A parsed spec: plain data with no pointers (~660 bytes), lives on the stack or in a config. */
struct distribution {
    uint8_t unit;      /* enum distribution_unit */
    uint8_t count;     /* items; 0 is the empty distribution: every draw is the default */
    uint32_t rest_ppm; /* weight left to the caller's default */
    uint64_t max;      /* values are at most this (status: 599) */
    struct distribution_item items[DISTRIBUTION_MAX_ITEMS];
};

/* Parses `len` bytes at `s` (need not be NUL-terminated) as a spec of `unit` whose values may not
 * exceed `max` (ignored for status codes). Returns 0, or -1 with a one-line reason in `err` (at most
 * err_size bytes with the NUL; no parameter name: the caller prefixes it, as in "delay: unknown
 * distribution 'lognorm' (allowed: ...)") and d->count set to 0. Never allocates. */
int distribution_parse(struct distribution *d, enum distribution_unit unit, const char *s, size_t len, uint64_t max,
                       char *err, size_t err_size);

/* Parses a weight as lists write it: a percentage 0..100 with up to 4 decimals ("5", "0.5"), exactly
 * `len` bytes. Returns 0 and sets *out_ppm (millionths of all draws), or -1. Shared with fault.h's
 * kind lists, which follow the same weight rules. */
int distribution_parse_weight_ppm(const char *s, size_t len, uint32_t *out_ppm);

/* Sets *d to the lone value `value` (clamped to max), as if parsed from its text. */
void distribution_set_fixed(struct distribution *d, enum distribution_unit unit, uint64_t value, uint64_t max);

/* Returns 1 and sets *out_value when every draw of d gives the same value (a lone fixed value with
 * all the weight): the caller may skip drawing. Else 0. */
int distribution_is_fixed(const struct distribution *d, uint64_t *out_value);

/* Draws one value. Returns 0 and sets *out_value (in 0..d->max), or DISTRIBUTION_REST when the draw
 * fell in the rest weight (then the caller draws from its default: another distribution or a
 * constant). */
int distribution_draw(const struct distribution *d, struct prng *rng, uint64_t *out_value);

/* distribution_draw with `default_value` for the rest weight. */
uint64_t distribution_sample(const struct distribution *d, struct prng *rng, uint64_t default_value);

/* Writes d's canonical text into buf (NUL-terminated, cut to buf_size). Returns the length of the
 * whole text (as snprintf does; at most DISTRIBUTION_DESCRIBE_BYTES - 1). Empty for count 0. */
size_t distribution_describe(const struct distribution *d, char *buf, size_t buf_size);

/* 1 if a and b give the same draws from the same prng state (same unit, max, items), else 0. */
int distribution_equal(const struct distribution *a, const struct distribution *b);

/* Writes `ppm` millionths as a percentage with up to 4 decimals and no trailing zeros ("5.5", "10",
 * "0.0001") into buf. */
void distribution_format_percent(uint64_t ppm, char *buf, size_t size);

/* The standard normal quantile (inverse CDF) at p in (0, 1), relative error below 1.2e-9 (Acklam's
 * rational approximation). Exported for its unit test. */
double distribution_normal_quantile(double p);

#endif
