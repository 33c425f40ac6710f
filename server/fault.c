#include "fault.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "distribution.h"
#include "stats.h"

_Static_assert(FAULT_KINDS == STATS_FAULT_KINDS && FAULT_RESET == 1 && FAULT_GARBAGE == 5,
               "stats count faults by kind in this order (stats_table.c names them)");
_Static_assert(FAULT_WEIGHT_FULL_PPM == DISTRIBUTION_WEIGHT_FULL_PPM, "fault weights are distribution weights");

static const char *const kind_names[FAULT_KIND_COUNT] = {
    [FAULT_NONE] = "none", [FAULT_RESET] = "reset", [FAULT_CLOSE] = "close",
    [FAULT_HANG] = "hang", [FAULT_PARTIAL] = "partial", [FAULT_GARBAGE] = "garbage",
};

#define ALLOWED_KINDS "reset, close, hang, partial, garbage"

const char *fault_kind_name(enum fault_kind kind)
{
    return (unsigned)kind < FAULT_KIND_COUNT ? kind_names[kind] : "unknown";
}

static int fail(struct fault_spec *spec, char *err, size_t err_size, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct fault_spec *spec, char *err, size_t err_size, const char *fmt, ...)
{
    spec->count = 0;
    if (err_size != 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* At most 40 bytes of untrusted text for an error message, with control bytes shown as '?'. */
struct quoted {
    char text[48];
};

static struct quoted quote(const char *s, size_t len)
{
    struct quoted q;
    size_t n = len < 40 ? len : 40, i;
    for (i = 0; i < n; i++)
        q.text[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (len > n)
        q.text[i++] = '.', q.text[i++] = '.', q.text[i++] = '.';
    q.text[i] = '\0';
    return q;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static enum fault_kind kind_named(const char *s, size_t len)
{
    for (int k = FAULT_NONE + 1; k < FAULT_KIND_COUNT; k++)
        if (strlen(kind_names[k]) == len && strncasecmp(s, kind_names[k], len) == 0)
            return (enum fault_kind)k;
    return FAULT_NONE;
}

int fault_spec_parse(struct fault_spec *spec, const char *s, size_t len, char *err, size_t err_size)
{
    memset(spec, 0, sizeof(*spec));
    size_t start = 0, end = len;
    while (start < end && is_ows(s[start]))
        start++;
    while (end > start && is_ows(s[end - 1]))
        end--;
    if (start == end)
        return fail(spec, err, err_size, "empty (allowed: a kind (" ALLOWED_KINDS ") or a weighted list like reset:1,hang:0.5)");
    size_t unweighted = 0, items = 0;
    uint64_t sum_ppm = 0;
    const char *first_unweighted = NULL;
    size_t first_unweighted_len = 0;
    for (size_t i = start; i <= end;) {
        const char *comma = memchr(s + i, ',', end - i);
        size_t item_end = comma ? (size_t)(comma - s) : end;
        size_t a = i, b = item_end;
        while (a < b && is_ows(s[a]))
            a++;
        while (b > a && is_ows(s[b - 1]))
            b--;
        if (a == b)
            return fail(spec, err, err_size, "item %zu is empty (allowed: kind or kind:percent between commas)", items + 1);
        const char *colon = memchr(s + a, ':', b - a);
        size_t name_end = colon ? (size_t)(colon - s) : b;
        enum fault_kind kind = kind_named(s + a, name_end - a);
        if (kind == FAULT_NONE)
            return fail(spec, err, err_size, "unknown fault '%s' (allowed: " ALLOWED_KINDS ")", quote(s + a, name_end - a).text);
        for (size_t k = 0; k < items; k++)
            if (spec->items[k].kind == kind)
                return fail(spec, err, err_size, "'%s' is given twice (allowed: each kind once)", kind_names[kind]);
        if (items == FAULT_KINDS) /* unreachable: five distinct kinds fill it */
            return fail(spec, err, err_size, "too many items");
        struct fault_item *item = &spec->items[items++];
        item->kind = (uint8_t)kind;
        if (colon != NULL) {
            size_t w = name_end + 1;
            if (distribution_parse_weight_ppm(s + w, b - w, &item->weight_ppm) != 0)
                return fail(spec, err, err_size, "weight '%s' of %s is not a percentage (allowed: 0..100 with up to 4 decimals, e.g. reset:0.5)",
                            quote(s + w, b - w).text, kind_names[kind]);
            sum_ppm += item->weight_ppm;
        } else if (unweighted++ == 0) {
            first_unweighted = s + a;
            first_unweighted_len = b - a;
        }
        if (comma == NULL)
            break;
        i = item_end + 1;
    }
    if (unweighted != 0) {
        if (items > 1)
            return fail(spec, err, err_size, "'%s' has no weight (in a list every item is kind:percent, e.g. reset:1,hang:0.5)",
                        quote(first_unweighted, first_unweighted_len).text);
        spec->items[0].weight_ppm = FAULT_WEIGHT_FULL_PPM;
        sum_ppm = FAULT_WEIGHT_FULL_PPM;
    }
    if (sum_ppm > FAULT_WEIGHT_FULL_PPM) {
        char sum_text[32];
        distribution_format_percent(sum_ppm, sum_text, sizeof(sum_text));
        return fail(spec, err, err_size, "weights add up to %s %% (allowed: at most 100; the rest is no fault)", sum_text);
    }
    spec->count = (uint8_t)items;
    return 0;
}

enum fault_kind fault_spec_draw(const struct fault_spec *spec, struct prng *rng)
{
    if (spec->count == 0)
        return FAULT_NONE;
    if (spec->count == 1 && spec->items[0].weight_ppm == FAULT_WEIGHT_FULL_PPM)
        return (enum fault_kind)spec->items[0].kind;
    uint64_t u = prng_below(rng, FAULT_WEIGHT_FULL_PPM), acc = 0;
    for (size_t k = 0; k < spec->count; k++)
        if (u < (acc += spec->items[k].weight_ppm))
            return (enum fault_kind)spec->items[k].kind;
    return FAULT_NONE;
}

size_t fault_spec_describe(const struct fault_spec *spec, char *buf, size_t buf_size)
{
    char text[FAULT_DESCRIBE_BYTES];
    size_t n = 0;
    text[0] = '\0';
    for (size_t k = 0; k < spec->count; k++) {
        char percent[32];
        const struct fault_item *item = &spec->items[k];
        bool lone = spec->count == 1 && item->weight_ppm == FAULT_WEIGHT_FULL_PPM;
        distribution_format_percent(item->weight_ppm, percent, sizeof(percent));
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s%s%s", k ? "," : "", kind_names[item->kind], lone ? "" : ":",
                              lone ? "" : percent);
    }
    if (buf_size != 0)
        snprintf(buf, buf_size, "%s", text);
    return n;
}
