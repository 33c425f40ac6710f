/* duration: parsing and printing the durations and sizes used on the command line.
 *
 * Durations: a non-negative decimal number with an optional unit `us`, `ms` or `s`; a bare number
 * means milliseconds ("250us", "1.5ms", "2s", "10", "0"). Results are whole nanoseconds, rounded to
 * the nearest; values above DURATION_MAX_NS are refused. */
#ifndef MOCKUPSTREAM_DURATION_H
#define MOCKUPSTREAM_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* One day: no delay or timeout this tool needs is longer, and it keeps arithmetic far from overflow. */
#define DURATION_MAX_NS (86400ull * 1000000000ull)

/* Parses `len` bytes at `s` (need not be NUL-terminated). Returns 0 and sets *out_ns, or -1. */
int duration_parse_ns(const char *s, size_t len, uint64_t *out_ns);

/* Most digits a /wait/<ms> number may have (leading zeros count): more is refused unread. */
#define DURATION_WAIT_MS_MAX_DIGITS 12

/* Parses a plain decimal count of milliseconds ("25", no unit, no sign, no fraction), as in
 * /wait/<ms>. Returns 0 and sets *out_ns, or -1 (empty, non-digit, more than
 * DURATION_WAIT_MS_MAX_DIGITS digits, or above DURATION_MAX_NS). */
int duration_parse_wait_ms(const char *s, size_t len, uint64_t *out_ns);

/* Parses a byte count: decimal digits with an optional `k`, `m` or `g` suffix (powers of 1024).
 * Returns 0 and sets *out_bytes, or -1 (empty, junk, or above `max_bytes`). */
int size_parse_bytes(const char *s, size_t len, uint64_t max_bytes, uint64_t *out_bytes);

/* Writes a short human form ("10ms", "250us", "1.5s", "0") into buf. Returns buf. */
char *duration_format(uint64_t ns, char *buf, size_t buf_size);

#endif
