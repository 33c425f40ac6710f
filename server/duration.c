#include "duration.h"

#include <stdio.h>
#include <string.h>

/* Integer-only parsing: strtod would accept "inf", "0x1p3", locales and exponents, none of which a
 * user means by a duration, and double rounding would make "1.1ms" come out as 1099999 ns. */
int duration_parse_ns(const char *s, size_t len, uint64_t *out_ns)
{
    size_t i = 0;
    uint64_t whole = 0, frac_num = 0, frac_den = 1;
    int digits = 0;

    while (i < len && s[i] >= '0' && s[i] <= '9') {
        whole = whole * 10 + (uint64_t)(s[i] - '0');
        if (whole > DURATION_MAX_NS)
            return -1;
        i++;
        digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            /* digits beyond nanosecond precision of the largest unit cannot matter; ignore them */
            if (frac_den < 1000000000000ull) {
                frac_num = frac_num * 10 + (uint64_t)(s[i] - '0');
                frac_den *= 10;
            }
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return -1;

    uint64_t unit_ns;
    size_t rest = len - i;
    if (rest == 0 || (rest == 2 && memcmp(s + i, "ms", 2) == 0))
        unit_ns = 1000000ull;
    else if (rest == 2 && memcmp(s + i, "us", 2) == 0)
        unit_ns = 1000ull;
    else if (rest == 1 && s[i] == 's')
        unit_ns = 1000000000ull;
    else
        return -1;

    if (whole > DURATION_MAX_NS / unit_ns)
        return -1;
    uint64_t ns = whole * unit_ns + (frac_num * unit_ns + frac_den / 2) / frac_den;
    if (ns > DURATION_MAX_NS)
        return -1;
    *out_ns = ns;
    return 0;
}

int duration_parse_wait_ms(const char *s, size_t len, uint64_t *out_ns)
{
    if (len == 0 || len > DURATION_WAIT_MS_MAX_DIGITS)
        return -1;
    uint64_t ms = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        ms = ms * 10 + (uint64_t)(s[i] - '0');
    }
    if (ms > DURATION_MAX_NS / 1000000ull)
        return -1;
    *out_ns = ms * 1000000ull;
    return 0;
}

int size_parse_bytes(const char *s, size_t len, uint64_t max_bytes, uint64_t *out_bytes)
{
    size_t i = 0;
    uint64_t n = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        n = n * 10 + (uint64_t)(s[i] - '0');
        if (n > max_bytes)
            return -1;
        i++;
    }
    if (i == 0)
        return -1;
    uint64_t multiplier = 1;
    if (i + 1 == len) {
        switch (s[i] | 0x20) {
        case 'k': multiplier = 1024ull; break;
        case 'm': multiplier = 1024ull * 1024; break;
        case 'g': multiplier = 1024ull * 1024 * 1024; break;
        default: return -1;
        }
    } else if (i != len) {
        return -1;
    }
    if (n > max_bytes / multiplier)
        return -1;
    *out_bytes = n * multiplier;
    return 0;
}

char *duration_format(uint64_t ns, char *buf, size_t buf_size)
{
    static const struct {
        uint64_t ns;
        const char *suffix;
    } units[] = {{1000000000ull, "s"}, {1000000ull, "ms"}, {1000ull, "us"}};
    if (ns == 0) {
        snprintf(buf, buf_size, "0");
        return buf;
    }
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (ns >= units[u].ns || u == sizeof(units) / sizeof(units[0]) - 1) {
            /* three decimals at most, trailing zeros dropped */
            uint64_t milli = (ns * 1000 + units[u].ns / 2) / units[u].ns;
            char num[32];
            snprintf(num, sizeof(num), "%llu.%03llu", (unsigned long long)(milli / 1000), (unsigned long long)(milli % 1000));
            char *end = num + strlen(num) - 1;
            while (*end == '0')
                *end-- = '\0';
            if (*end == '.')
                *end = '\0';
            snprintf(buf, buf_size, "%s%s", num, units[u].suffix);
            return buf;
        }
    }
    return buf;
}
