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

/* A non-negative decimal number at the start of a text ("12", "0.25", ".5", "3."), read with integers
 * only: strtod would accept "inf", "0x1p3", locales and exponents, none of which a user means, and
 * double rounding would make "1.1ms" come out as 1099999 ns. */
struct decimal {
    uint64_t whole;    /* the integer part */
    uint64_t frac_num; /* the first DECIMAL_KEPT_DIGITS decimals, as an integer over frac_den */
    uint64_t frac_den; /* 10^(decimals kept) */
    size_t decimals;   /* decimals written, kept or not */
    size_t end;        /* bytes read: the number ends there (a unit may follow) */
};

/* Decimals kept: ten carry the nanosecond and its rounding digit for the largest duration unit;
 * more cannot matter, and keeping them would overflow frac_num x unit (with 12, "0.999999999999s"
 * came out as 3.9 ms). */
#define DECIMAL_KEPT_DIGITS 10

/* Reads the number at the start of s[0..len). Returns 0, or -1 if it has no digit or its integer
 * part is above `whole_max`. */
int decimal_read(const char *s, size_t len, uint64_t whole_max, struct decimal *out);

/* Parses `len` bytes at `s` (need not be NUL-terminated). Returns 0 and sets *out_ns, or -1. */
int duration_parse_ns(const char *s, size_t len, uint64_t *out_ns);

/* Longest /wait/<ms> number with a fraction duration_parse_decimal_ms reads ("0.25", "1.5"). */
#define DURATION_DECIMAL_MS_MAX_CHARS 24

/* Parses a decimal count of milliseconds with an optional fraction and no unit ("25", "0.25", "1.5"),
 * as /wait/<ms> with decimals. Returns 0 and sets *out_ns (rounded to the nanosecond), or -1 (empty,
 * a sign, a unit, two dots, more than DURATION_DECIMAL_MS_MAX_CHARS characters, above one day). */
int duration_parse_decimal_ms(const char *s, size_t len, uint64_t *out_ns);

/* Parses a byte count: decimal digits with an optional `k`, `m` or `g` suffix, any case, or `KiB`,
 * `MiB`, `GiB` (all powers of 1024; `kb`/`KB` are refused: 1000 or 1024 is anyone's guess).
 * Returns 0 and sets *out_bytes, or -1 (empty, junk, or above `max_bytes`). */
int size_parse_bytes(const char *s, size_t len, uint64_t max_bytes, uint64_t *out_bytes);

/* Writes a short human form ("10ms", "250us", "1.5s", "0") into buf, rounded to three decimals of
 * its unit. Returns buf. */
char *duration_format(uint64_t ns, char *buf, size_t buf_size);

/* Longest text duration_format_exact and size_format_exact write, with the NUL. */
#define DURATION_FORMAT_EXACT_BYTES 32

/* Writes `ns` so that duration_parse_ns reads back exactly `ns`: the largest unit not above it with
 * as many decimals as needed ("10ms", "1.234567ms", "2.000000001s", "0.001us", "0"). Returns buf. */
char *duration_format_exact(uint64_t ns, char *buf, size_t buf_size);

/* Writes `bytes` so that size_parse_bytes reads back exactly `bytes`: with the largest of g, m, k
 * that divides it, else plain ("64k", "1m", "1000", "0"). Returns buf. */
char *size_format_exact(uint64_t bytes, char *buf, size_t buf_size);

#endif
