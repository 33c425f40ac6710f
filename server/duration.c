#include "duration.h"

#include <stdio.h>
#include <string.h>

int decimal_read(const char *s, size_t len, uint64_t whole_max, struct decimal *out)
{
    *out = (struct decimal){.frac_den = 1};
    size_t i = 0, digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        out->whole = out->whole * 10 + (uint64_t)(s[i] - '0');
        if (out->whole > whole_max)
            return -1;
        i++;
        digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (out->decimals++ < DECIMAL_KEPT_DIGITS) {
                out->frac_num = out->frac_num * 10 + (uint64_t)(s[i] - '0');
                out->frac_den *= 10;
            }
            i++;
            digits++;
        }
    }
    out->end = i;
    return digits == 0 ? -1 : 0;
}

int duration_parse_ns(const char *s, size_t len, uint64_t *out_ns)
{
    struct decimal d;
    if (decimal_read(s, len, DURATION_MAX_NS, &d) != 0)
        return -1;
    size_t i = d.end;
    uint64_t whole = d.whole, frac_num = d.frac_num, frac_den = d.frac_den;

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

int size_parse_bytes(const char *s, size_t len, uint64_t max_bytes, uint64_t *out_bytes)
{
    size_t i = 0;
    uint64_t n = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (n > (UINT64_MAX - digit) / 10) /* would wrap: with max_bytes = UINT64_MAX the check below cannot see it */
            return -1;
        n = n * 10 + digit;
        if (n > max_bytes)
            return -1;
        i++;
    }
    if (i == 0)
        return -1;
    uint64_t multiplier = 1;
    size_t rest = len - i;
    /* "kb" stays refused: a reader cannot tell whether it means 1000 or 1024 */
    if (rest == 1 || (rest == 3 && (s[i + 1] | 0x20) == 'i' && (s[i + 2] | 0x20) == 'b')) {
        switch (s[i] | 0x20) {
        case 'k': multiplier = 1024ull; break;
        case 'm': multiplier = 1024ull * 1024; break;
        case 'g': multiplier = 1024ull * 1024 * 1024; break;
        default: return -1;
        }
    } else if (rest != 0) {
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

int duration_parse_decimal_ms(const char *s, size_t len, uint64_t *out_ns)
{
    if (len == 0 || len > DURATION_DECIMAL_MS_MAX_CHARS)
        return -1;
    size_t dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.')
            dots++;
        else if (s[i] < '0' || s[i] > '9')
            return -1;
    }
    /* one dot at most; the rest (".5", "5.", rounding, the one-day cap) is duration_parse_ns's */
    if (dots > 1)
        return -1;
    return duration_parse_ns(s, len, out_ns);
}

/* Writes "<whole>.<frac>" with `frac` as a 9-, 6- or 3-digit fraction, then drops trailing zeros (and
 * a bare dot) and appends the unit. */
static void format_fixed(char *buf, size_t buf_size, uint64_t whole, uint64_t frac, int decimals, const char *unit)
{
    char num[48];
    int n = decimals == 9   ? snprintf(num, sizeof(num), "%llu.%09llu", (unsigned long long)whole, (unsigned long long)frac)
            : decimals == 6 ? snprintf(num, sizeof(num), "%llu.%06llu", (unsigned long long)whole, (unsigned long long)frac)
                            : snprintf(num, sizeof(num), "%llu.%03llu", (unsigned long long)whole, (unsigned long long)frac);
    while (n > 0 && num[n - 1] == '0')
        num[--n] = '\0';
    if (n > 0 && num[n - 1] == '.')
        num[--n] = '\0';
    snprintf(buf, buf_size, "%s%s", num, unit);
}

char *duration_format_exact(uint64_t ns, char *buf, size_t buf_size)
{
    if (ns == 0)
        snprintf(buf, buf_size, "0");
    else if (ns >= 1000000000ull)
        format_fixed(buf, buf_size, ns / 1000000000ull, ns % 1000000000ull, 9, "s");
    else if (ns >= 1000000ull)
        format_fixed(buf, buf_size, ns / 1000000ull, ns % 1000000ull, 6, "ms");
    else
        format_fixed(buf, buf_size, ns / 1000ull, ns % 1000ull, 3, "us");
    return buf;
}

char *size_format_exact(uint64_t bytes, char *buf, size_t buf_size)
{
    static const struct {
        uint64_t bytes;
        const char *suffix;
    } units[] = {{1024ull * 1024 * 1024, "g"}, {1024ull * 1024, "m"}, {1024ull, "k"}};
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (bytes != 0 && bytes % units[u].bytes == 0) {
            snprintf(buf, buf_size, "%llu%s", (unsigned long long)(bytes / units[u].bytes), units[u].suffix);
            return buf;
        }
    }
    snprintf(buf, buf_size, "%llu", (unsigned long long)bytes);
    return buf;
}
