/* distribution_parse: the text of a spec (grammar in distribution.h) into a struct distribution, in
 * one pass without allocating; errors are one line that says what is allowed. */
#include "distribution.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"

/* The standard normal quantile at 0.99: lognormal's sigma is ln(p99 / p50) / this. */
#define Z_P99 2.3263478740408408

struct parser {
    const char *s;
    size_t len;
    size_t i; /* next byte to read */
    enum distribution_unit unit;
    uint64_t max;
    char *err;
    size_t err_size;
};

/* Item-level help, by unit: what a whole spec may be. */
static const char *spec_help(enum distribution_unit unit)
{
    switch (unit) {
    case DISTRIBUTION_NS:
        return "(allowed: a duration, uniform:, normal:, lognormal:, pareto:, or a weighted list like 1ms:10,5ms:2)";
    case DISTRIBUTION_BYTES:
        return "(allowed: a size, uniform:, normal:, lognormal:, pareto:, or a weighted list like 1k:10,64k:2)";
    default:
        return "(allowed: a status code 200..599, or a weighted list like 503:5,500:1)";
    }
}

static int fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parser *p, const char *fmt, ...)
{
    if (p->err_size != 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, p->err_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Client bytes go into a one-line reason that is logged and sent back: printable ASCII only, and
 * cut so one bad value cannot fill the message. */
#define QUOTE_MAX_CHARS 32
struct quoted {
    char text[QUOTE_MAX_CHARS + 4];
};

static struct quoted quote(const char *s, size_t len)
{
    struct quoted q;
    size_t n = len > QUOTE_MAX_CHARS ? QUOTE_MAX_CHARS : len, o = 0;
    for (size_t k = 0; k < n; k++)
        q.text[o++] = (s[k] >= 0x20 && s[k] <= 0x7e) ? s[k] : '?';
    if (len > n) {
        memcpy(q.text + o, "...", 3);
        o += 3;
    }
    q.text[o] = '\0';
    return q;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static size_t skip_ows(const struct parser *p, size_t i)
{
    while (i < p->len && is_ows(p->s[i]))
        i++;
    return i;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

/* Case-insensitive comparison of s[0..len) with the lowercase NUL-terminated `word`. */
static int word_is(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (len != n)
        return 0;
    for (size_t k = 0; k < n; k++) {
        char c = s[k];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c | 0x20);
        if (c != word[k])
            return 0;
    }
    return 1;
}

/* A value token runs to the next ':', ',', ';', blank or the end. */
static size_t value_end(const struct parser *p, size_t i)
{
    while (i < p->len && p->s[i] != ':' && p->s[i] != ',' && p->s[i] != ';' && !is_ows(p->s[i]))
        i++;
    return i;
}

/* Parses one value token of the parser's unit. `shape` and `param` name where it stands, for the
 * error ("lognormal", "p99"; both "" for a plain item). */
static int parse_value(struct parser *p, const char *tok, size_t tok_len, const char *shape, const char *param,
                       uint64_t *out)
{
    char what[24]; /* "<shape> <param> ", on the way to an error only */
#define WHAT (snprintf(what, sizeof(what), "%s%s%s%s", shape, *shape ? " " : "", param, *param ? " " : ""), what)
    char max_text[DURATION_FORMAT_EXACT_BYTES]; /* formatted only on the way to an error: snprintf costs */
    uint64_t v;
    switch (p->unit) {
    case DISTRIBUTION_NS:
        if (duration_parse_ns(tok, tok_len, &v) != 0)
            return fail(p, "%s'%s' is not a duration (allowed: 0..%s as a number with us, ms or s, e.g. 250us, 1.5ms, "
                           "2s; a bare number is ms)",
                        WHAT, quote(tok, tok_len).text, duration_format_exact(p->max, max_text, sizeof(max_text)));
        if (v > p->max)
            duration_format_exact(p->max, max_text, sizeof(max_text));
        break;
    case DISTRIBUTION_BYTES:
        if (size_parse_bytes(tok, tok_len, DISTRIBUTION_VALUE_LIMIT, &v) != 0)
            return fail(p, "%s'%s' is not a size (allowed: 0..%s bytes, with an optional k, m, g or KiB, MiB, GiB, "
                           "e.g. 1024, 64k)",
                        WHAT, quote(tok, tok_len).text, size_format_exact(p->max, max_text, sizeof(max_text)));
        if (v > p->max)
            size_format_exact(p->max, max_text, sizeof(max_text));
        break;
    default:
        v = 0;
        for (size_t k = 0; k < tok_len; k++) {
            if (tok[k] < '0' || tok[k] > '9' || k >= 3) {
                v = 0;
                break;
            }
            v = v * 10 + (uint64_t)(tok[k] - '0');
        }
        /* 1xx are interim responses (RFC 9110 15.2), never a final answer: a client would wait for another */
        if (v < 200 || v > 599)
            return fail(p, "%s'%s' is not a status code (allowed: 200..599; a 1xx is interim, never a final answer)", WHAT, quote(tok, tok_len).text);
        *out = v;
        return 0;
    }
    if (v > p->max)
        return fail(p, "%s'%s' is above the maximum %s (allowed: 0..%s)", WHAT, quote(tok, tok_len).text, max_text,
                    max_text);
#undef WHAT
    *out = v;
    return 0;
}

/* A decimal number with up to 4 decimals, scaled by 10^4 ("0.5" -> 5000). Returns 0 or -1. */
static int parse_decimal_e4(const char *s, size_t len, uint64_t *out_e4)
{
    struct decimal d;
    if (decimal_read(s, len, 1000000, &d) != 0 || d.end != len || d.decimals > 4)
        return -1;
    uint64_t frac = d.frac_num;
    for (size_t kept = d.decimals; kept < 4; kept++)
        frac *= 10;
    *out_e4 = d.whole * 10000 + frac;
    return 0;
}

int distribution_parse_weight_ppm(const char *s, size_t len, uint32_t *out_ppm)
{
    uint64_t ppm;
    if (parse_decimal_e4(s, len, &ppm) != 0 || ppm > DISTRIBUTION_WEIGHT_FULL_PPM)
        return -1;
    *out_ppm = (uint32_t)ppm;
    return 0;
}

static int parse_weight(struct parser *p, size_t item_no, uint32_t *out_ppm)
{
    size_t start = p->i, end = start;
    while (end < p->len && p->s[end] != ',' && !is_ows(p->s[end]))
        end++;
    uint32_t ppm;
    if (distribution_parse_weight_ppm(p->s + start, end - start, &ppm) != 0)
        return fail(p, "item %zu: weight '%s' is not a percentage (allowed: 0..100 with up to 4 decimals, e.g. "
                       "503:0.5)",
                    item_no, quote(p->s + start, end - start).text);
    p->i = end;
    *out_ppm = ppm;
    return 0;
}

static int parse_uniform(struct parser *p, struct distribution_item *item)
{
    size_t lo_start = p->i, k = p->i;
    while (k < p->len && p->s[k] != ':' && p->s[k] != ',' && p->s[k] != ';' && !is_ows(p->s[k]) &&
           !(p->s[k] == '.' && k + 1 < p->len && p->s[k + 1] == '.'))
        k++;
    if (k + 1 >= p->len || p->s[k] != '.')
        return fail(p, "uniform needs lo..hi, e.g. uniform:5ms..15ms");
    size_t hi_start = k + 2, hi_end = value_end(p, hi_start);
    if (parse_value(p, p->s + lo_start, k - lo_start, "uniform", "lo", &item->a) != 0 ||
        parse_value(p, p->s + hi_start, hi_end - hi_start, "uniform", "hi", &item->b) != 0)
        return -1;
    if (item->a > item->b)
        return fail(p, "uniform lo '%s' is above hi '%s' (write uniform:lo..hi, e.g. uniform:5ms..15ms)",
                    quote(p->s + lo_start, k - lo_start).text, quote(p->s + hi_start, hi_end - hi_start).text);
    item->shape = DISTRIBUTION_UNIFORM;
    p->i = hi_end;
    return 0;
}

/* The shapes written as name:key=value,key=value. */
enum { KEY_MEAN, KEY_SD, KEY_P50, KEY_P99, KEY_MIN, KEY_ALPHA, KEY_COUNT };
static const char *const key_names[KEY_COUNT] = {"mean", "sd", "p50", "p99", "min", "alpha"};

struct keyed_shape {
    const char *name;
    const char *allowed; /* keys, for the error */
    const char *example;
    unsigned keys;       /* bit per KEY_ */
};

static const struct keyed_shape shape_normal = {"normal", "mean, sd", "normal:mean=10ms,sd=2ms",
                                                1u << KEY_MEAN | 1u << KEY_SD};
static const struct keyed_shape shape_lognormal = {"lognormal", "p50, p99", "lognormal:p50=10ms,p99=50ms",
                                                   1u << KEY_P50 | 1u << KEY_P99};
static const struct keyed_shape shape_pareto = {"pareto", "min and alpha, or p50 and p99",
                                                "pareto:min=5ms,alpha=1.5 or pareto:p50=5ms,p99=100ms",
                                                1u << KEY_MIN | 1u << KEY_ALPHA | 1u << KEY_P50 | 1u << KEY_P99};

/* Reads key=value pairs from p->i, stopping before a ',' that does not start another `key=` (it
 * separates items) or at the end of the item. Sets *given (bit per key) and values[key]. */
static int parse_params(struct parser *p, const struct keyed_shape *shape, unsigned *given, uint64_t values[KEY_COUNT])
{
    *given = 0;
    for (;;) {
        size_t key_start = p->i, key_end = key_start;
        while (key_end < p->len && is_alnum(p->s[key_end]))
            key_end++;
        if (key_end == key_start || key_end >= p->len || p->s[key_end] != '=')
            return fail(p, "%s: expected name=value at '%s' (e.g. %s)", shape->name,
                        quote(p->s + key_start, value_end(p, key_start) - key_start).text, shape->example);
        int key = -1;
        for (int k = 0; k < KEY_COUNT; k++) {
            if ((shape->keys & (1u << k)) && word_is(p->s + key_start, key_end - key_start, key_names[k]))
                key = k;
        }
        if (key < 0)
            return fail(p, "%s: unknown parameter '%s' (allowed: %s; e.g. %s)", shape->name,
                        quote(p->s + key_start, key_end - key_start).text, shape->allowed, shape->example);
        if (*given & (1u << key))
            return fail(p, "%s: %s given twice", shape->name, key_names[key]);
        size_t v_start = key_end + 1, v_end = value_end(p, v_start);
        if (key == KEY_ALPHA) {
            if (parse_decimal_e4(p->s + v_start, v_end - v_start, &values[key]) != 0 || values[key] < 100 ||
                values[key] > 1000000)
                return fail(p, "pareto: alpha '%s' is not a number 0.01..100 with up to 4 decimals (e.g. 1.5)",
                            quote(p->s + v_start, v_end - v_start).text);
        } else {
            if (parse_value(p, p->s + v_start, v_end - v_start, shape->name, key_names[key], &values[key]) != 0)
                return -1;
        }
        *given |= 1u << key;
        p->i = v_end;

        /* ';' always continues the parameters; ',' only when `name=` follows */
        size_t next = skip_ows(p, p->i);
        if (next >= p->len || (p->s[next] != ',' && p->s[next] != ';'))
            return 0;
        size_t look = skip_ows(p, next + 1), look_end = look;
        while (look_end < p->len && is_alnum(p->s[look_end]))
            look_end++;
        int is_param = look_end > look && look_end < p->len && p->s[look_end] == '=';
        if (!is_param && p->s[next] == ',')
            return 0;
        if (!is_param)
            return fail(p, "%s: expected name=value after ';' (e.g. %s)", shape->name, shape->example);
        p->i = look;
    }
}

static int parse_keyed(struct parser *p, const struct keyed_shape *shape, struct distribution_item *item)
{
    unsigned given;
    uint64_t v[KEY_COUNT] = {0};
    if (parse_params(p, shape, &given, v) != 0)
        return -1;
    if (shape == &shape_normal) {
        if (given != shape->keys)
            return fail(p, "normal needs mean= and sd=, e.g. %s", shape->example);
        if (v[KEY_SD] == 0)
            return fail(p, "normal: sd must be above 0 (for a fixed value write just the value)");
        item->shape = DISTRIBUTION_NORMAL;
        item->a = v[KEY_MEAN];
        item->b = v[KEY_SD];
        /* the share of the untruncated normal below 0, skipped by every draw */
        item->x = 0.5 * erfc((double)item->a / ((double)item->b * M_SQRT2));
        return 0;
    }
    unsigned by_percentiles = 1u << KEY_P50 | 1u << KEY_P99;
    if (given == by_percentiles) {
        if (v[KEY_P50] == 0)
            return fail(p, "%s: p50 must be above 0 (e.g. %s)", shape->name, shape->example);
        if (v[KEY_P99] <= v[KEY_P50])
            return fail(p, "%s: p99 must be above p50 (e.g. %s)", shape->name, shape->example);
        item->a = v[KEY_P50];
        item->b = v[KEY_P99];
        double ratio = (double)item->b / (double)item->a;
        if (shape == &shape_lognormal) {
            item->shape = DISTRIBUTION_LOGNORMAL;
            item->x = log((double)item->a);
            item->y = log(ratio) / Z_P99;
        } else {
            /* q(p) = min (1 - p)^(-1/alpha): q(0.99) / q(0.5) = 50^(1/alpha) */
            double alpha = log(50.0) / log(ratio);
            item->shape = DISTRIBUTION_PARETO_P50_P99;
            item->x = (double)item->a * pow(2.0, -1.0 / alpha);
            item->y = -1.0 / alpha;
        }
        return 0;
    }
    if (shape == &shape_pareto && given == (1u << KEY_MIN | 1u << KEY_ALPHA)) {
        if (v[KEY_MIN] == 0)
            return fail(p, "pareto: min must be above 0 (e.g. %s)", shape->example);
        item->shape = DISTRIBUTION_PARETO_MIN_ALPHA;
        item->a = v[KEY_MIN];
        item->b = v[KEY_ALPHA];
        item->x = (double)item->a;
        item->y = -10000.0 / (double)item->b;
        return 0;
    }
    if (shape == &shape_lognormal)
        return fail(p, "lognormal needs p50= and p99=, e.g. %s", shape->example);
    return fail(p, "pareto needs min= and alpha=, or p50= and p99= (e.g. %s)", shape->example);
}

static const struct keyed_shape *keyed_shape_named(const char *s, size_t len)
{
    if (word_is(s, len, "normal"))
        return &shape_normal;
    if (word_is(s, len, "lognormal"))
        return &shape_lognormal;
    if (word_is(s, len, "pareto"))
        return &shape_pareto;
    return NULL;
}

/* An item's body: a value, or name: and a shape. Leaves p->i after it. */
static int parse_body(struct parser *p, size_t item_no, struct distribution_item *item)
{
    size_t start = p->i, name_end = start;
    while (name_end < p->len && is_alpha(p->s[name_end]))
        name_end++;
    int named = name_end > start && name_end < p->len && p->s[name_end] == ':';
    size_t tok_end = value_end(p, start);
    int all_letters = name_end > start && name_end == tok_end;
    if (named || all_letters) {
        const struct keyed_shape *keyed = keyed_shape_named(p->s + start, name_end - start);
        int uniform = word_is(p->s + start, name_end - start, "uniform");
        if (!keyed && !uniform)
            return fail(p, "unknown distribution '%s' %s", quote(p->s + start, name_end - start).text,
                        spec_help(p->unit));
        if (p->unit == DISTRIBUTION_STATUS)
            return fail(p, "distributions are for delays and sizes %s", spec_help(p->unit));
        if (!named)
            return fail(p, "%s needs parameters, e.g. %s", uniform ? "uniform" : keyed->name,
                        uniform ? "uniform:5ms..15ms" : keyed->example);
        p->i = name_end + 1;
        return uniform ? parse_uniform(p, item) : parse_keyed(p, keyed, item);
    }
    if (tok_end == start)
        return fail(p, "item %zu is empty %s", item_no, spec_help(p->unit));
    if (parse_value(p, p->s + start, tok_end - start, "", "", &item->a) != 0)
        return -1;
    item->shape = DISTRIBUTION_FIXED;
    p->i = tok_end;
    return 0;
}

int distribution_parse(struct distribution *d, enum distribution_unit unit, const char *s, size_t len, uint64_t max,
                       char *err, size_t err_size)
{
    struct parser p = {s, len, 0, unit, max > DISTRIBUTION_VALUE_LIMIT ? DISTRIBUTION_VALUE_LIMIT : max, err, err_size};
    if (unit == DISTRIBUTION_STATUS)
        p.max = 599;
    d->unit = (uint8_t)unit;
    d->count = 0;
    d->rest_ppm = DISTRIBUTION_WEIGHT_FULL_PPM;
    d->max = p.max;

    uint64_t sum_ppm = 0;
    size_t unweighted = 0, unweighted_start = 0, unweighted_end = 0, count = 0;
    p.i = skip_ows(&p, 0);
    if (p.i == len)
        return fail(&p, "empty value %s", spec_help(unit));
    for (;;) {
        if (count == DISTRIBUTION_MAX_ITEMS)
            return fail(&p, "more than %d items (at most %d)", DISTRIBUTION_MAX_ITEMS, DISTRIBUTION_MAX_ITEMS);
        struct distribution_item *item = &d->items[count];
        memset(item, 0, sizeof(*item));
        size_t item_start = p.i;
        if (parse_body(&p, count + 1, item) != 0)
            return -1;
        if (p.i < len && s[p.i] == ':') {
            p.i++;
            if (parse_weight(&p, count + 1, &item->weight_ppm) != 0)
                return -1;
            sum_ppm += item->weight_ppm;
        } else if (unweighted++ == 0) {
            unweighted_start = item_start;
            unweighted_end = p.i;
        }
        count++;
        p.i = skip_ows(&p, p.i);
        if (p.i == len)
            break;
        if (s[p.i] != ',')
            return fail(&p, "unexpected '%s' after item %zu %s", quote(s + p.i, value_end(&p, p.i + 1) - p.i).text,
                        count, spec_help(unit));
        p.i = skip_ows(&p, p.i + 1);
    }
    if (unweighted != 0) {
        if (count > 1) {
            return fail(&p, "'%s' has no weight (in a list every item is value:percent, e.g. %s)",
                        quote(s + unweighted_start, unweighted_end - unweighted_start).text,
                        unit == DISTRIBUTION_STATUS ? "503:5,500:1" : unit == DISTRIBUTION_BYTES ? "1k:10,64k:2" : "1ms:10,5ms:2");
        }
        d->items[0].weight_ppm = DISTRIBUTION_WEIGHT_FULL_PPM;
        sum_ppm = DISTRIBUTION_WEIGHT_FULL_PPM;
    }
    if (sum_ppm > DISTRIBUTION_WEIGHT_FULL_PPM) {
        char sum_text[32];
        distribution_format_percent(sum_ppm, sum_text, sizeof(sum_text));
        return fail(&p, "weights add up to %s %% (allowed: at most 100; the rest goes to the default)", sum_text);
    }
    d->count = (uint8_t)count;
    d->rest_ppm = (uint32_t)(DISTRIBUTION_WEIGHT_FULL_PPM - sum_ppm);
    return 0;
}

void distribution_set_fixed(struct distribution *d, enum distribution_unit unit, uint64_t value, uint64_t max)
{
    if (max > DISTRIBUTION_VALUE_LIMIT)
        max = DISTRIBUTION_VALUE_LIMIT;
    if (unit == DISTRIBUTION_STATUS)
        max = 599;
    d->unit = (uint8_t)unit;
    d->count = 1;
    d->rest_ppm = 0;
    d->max = max;
    memset(&d->items[0], 0, sizeof(d->items[0]));
    d->items[0].shape = DISTRIBUTION_FIXED;
    d->items[0].weight_ppm = DISTRIBUTION_WEIGHT_FULL_PPM;
    d->items[0].a = value > max ? max : value;
}
