/* distribution: drawing values from a parsed spec, describing it back, comparing two (parsing is in
 * distribution_parse.c). */
#include "distribution.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"

/* ---- sampling --------------------------------------------------------------------------------- */

/* Peter J. Acklam's rational approximation of the normal quantile (2003), relative error < 1.15e-9:
 * a central rational function and one for each tail in sqrt(-2 log p). */
double distribution_normal_quantile(double p)
{
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                6.680131188771972e+01, -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                3.754408661907416e+00};
    const double p_low = 0.02425;
    if (p < p_low) {
        double q = sqrt(-2.0 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    if (p > 1.0 - p_low) {
        double q = sqrt(-2.0 * log1p(-p));
        return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

/* Rounds a real draw to the unit, within 0..max (NaN and infinities included: they become max). */
static uint64_t clamp_round(double v, uint64_t max)
{
    if (!(v < (double)max))
        return max;
    if (!(v > 0.0))
        return 0;
    return (uint64_t)(v + 0.5);
}

static uint64_t item_draw(const struct distribution_item *item, uint64_t max, struct prng *rng)
{
    switch (item->shape) {
    case DISTRIBUTION_UNIFORM:
        return item->a + prng_below(rng, item->b - item->a + 1);
    case DISTRIBUTION_NORMAL: {
        /* inverse CDF on [CDF(0), 1): truncation without a rejection loop */
        double u = item->x + (1.0 - item->x) * prng_unit_open(rng);
        if (u >= 1.0)
            u = 0x1.fffffffffffffp-1;
        return clamp_round((double)item->a + (double)item->b * distribution_normal_quantile(u), max);
    }
    case DISTRIBUTION_LOGNORMAL:
        return clamp_round(exp(item->x + item->y * distribution_normal_quantile(prng_unit_open(rng))), max);
    case DISTRIBUTION_PARETO_MIN_ALPHA:
    case DISTRIBUTION_PARETO_P50_P99:
        /* min x U^(-1/alpha), U uniform in (0, 1) */
        return clamp_round(item->x * exp(item->y * log(prng_unit_open(rng))), max);
    default:
        return item->a;
    }
}

int distribution_draw(const struct distribution *d, struct prng *rng, uint64_t *out_value)
{
    if (d->count == 0)
        return DISTRIBUTION_REST;
    const struct distribution_item *item = &d->items[0];
    if (!(d->count == 1 && item->weight_ppm == DISTRIBUTION_WEIGHT_FULL_PPM)) {
        uint64_t u = prng_below(rng, DISTRIBUTION_WEIGHT_FULL_PPM), acc = 0;
        size_t k = 0;
        while (k < d->count && u >= (acc += d->items[k].weight_ppm))
            k++;
        if (k == d->count)
            return DISTRIBUTION_REST;
        item = &d->items[k];
    }
    *out_value = item_draw(item, d->max, rng);
    return 0;
}

uint64_t distribution_sample(const struct distribution *d, struct prng *rng, uint64_t default_value)
{
    uint64_t v;
    return distribution_draw(d, rng, &v) == 0 ? v : default_value;
}

int distribution_is_fixed(const struct distribution *d, uint64_t *out_value)
{
    if (d->count != 1 || d->items[0].shape != DISTRIBUTION_FIXED ||
        d->items[0].weight_ppm != DISTRIBUTION_WEIGHT_FULL_PPM)
        return 0;
    *out_value = d->items[0].a;
    return 1;
}

/* ---- describing ------------------------------------------------------------------------------- */

struct text {
    char *buf;
    size_t size;
    size_t len; /* of the whole text, even past size */
};

static void text_add(struct text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len < t->size) {
        size_t room = t->size - 1 - t->len, copy = n < room ? n : room;
        memcpy(t->buf + t->len, s, copy);
        t->buf[t->len + copy] = '\0';
    }
    t->len += n;
}

void distribution_format_percent(uint64_t ppm, char *buf, size_t size)
{
    /* four decimals, then trailing zeros (and a bare dot) dropped: "5.5000" -> "5.5", "10.0000" -> "10" */
    int n = snprintf(buf, size, "%llu.%04u", (unsigned long long)(ppm / 10000), (unsigned)(ppm % 10000));
    if (n <= 0 || (size_t)n >= size)
        return;
    while (buf[n - 1] == '0')
        buf[--n] = '\0';
    if (buf[n - 1] == '.')
        buf[n - 1] = '\0';
}

static void text_add_value(struct text *t, enum distribution_unit unit, uint64_t v)
{
    char buf[DURATION_FORMAT_EXACT_BYTES];
    if (unit == DISTRIBUTION_NS)
        duration_format_exact(v, buf, sizeof(buf));
    else if (unit == DISTRIBUTION_BYTES)
        size_format_exact(v, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    text_add(t, buf);
}

static void text_add_params(struct text *t, enum distribution_unit unit, const char *head, uint64_t a,
                            const char *second, uint64_t b)
{
    text_add(t, head);
    text_add_value(t, unit, a);
    text_add(t, second);
    text_add_value(t, unit, b);
}

size_t distribution_describe(const struct distribution *d, char *buf, size_t buf_size)
{
    struct text t = {buf, buf_size, 0};
    enum distribution_unit unit = (enum distribution_unit)d->unit;
    if (buf_size != 0)
        buf[0] = '\0';
    for (size_t k = 0; k < d->count; k++) {
        const struct distribution_item *item = &d->items[k];
        if (k != 0)
            text_add(&t, ",");
        switch (item->shape) {
        case DISTRIBUTION_UNIFORM:
            text_add_params(&t, unit, "uniform:", item->a, "..", item->b);
            break;
        case DISTRIBUTION_NORMAL:
            text_add_params(&t, unit, "normal:mean=", item->a, ",sd=", item->b);
            break;
        case DISTRIBUTION_LOGNORMAL:
            text_add_params(&t, unit, "lognormal:p50=", item->a, ",p99=", item->b);
            break;
        case DISTRIBUTION_PARETO_P50_P99:
            text_add_params(&t, unit, "pareto:p50=", item->a, ",p99=", item->b);
            break;
        case DISTRIBUTION_PARETO_MIN_ALPHA: {
            char alpha[32];
            distribution_format_percent(item->b, alpha, sizeof(alpha)); /* alpha x 10^4, like a weight */
            text_add(&t, "pareto:min=");
            text_add_value(&t, unit, item->a);
            text_add(&t, ",alpha=");
            text_add(&t, alpha);
            break;
        }
        default:
            text_add_value(&t, unit, item->a);
            break;
        }
        if (!(d->count == 1 && item->weight_ppm == DISTRIBUTION_WEIGHT_FULL_PPM)) {
            char weight[32];
            distribution_format_percent(item->weight_ppm, weight, sizeof(weight));
            text_add(&t, ":");
            text_add(&t, weight);
        }
    }
    return t.len;
}

int distribution_equal(const struct distribution *a, const struct distribution *b)
{
    if (a->unit != b->unit || a->count != b->count || a->max != b->max || a->rest_ppm != b->rest_ppm)
        return 0;
    for (size_t k = 0; k < a->count; k++) {
        const struct distribution_item *x = &a->items[k], *y = &b->items[k];
        if (x->shape != y->shape || x->weight_ppm != y->weight_ppm || x->a != y->a || x->b != y->b)
            return 0;
    }
    return 1;
}
