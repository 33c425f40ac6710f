/* request_controls: the controls a client may send to steer one benchmark answer, as query
 * parameters (delay=) and as X-Mock-* header fields (X-Mock-Delay).
 *
 * One list, read by both protocol paths (the HTTP/1.1 parser and the HTTP/2 front end, for the
 * headers) and by the handler (the query), so a new control is added here once: its enum value, its
 * names. What each one means, and how the path, the query and the header rank, is the handler's
 * (handler.h). The FIRST of a repeated field or parameter counts. */
#ifndef MOCKUPSTREAM_REQUEST_CONTROLS_H
#define MOCKUPSTREAM_REQUEST_CONTROLS_H

#include <stddef.h>

enum request_control {
    REQUEST_CONTROL_DELAY,   /* X-Mock-Delay */
    REQUEST_CONTROL_STATUS,  /* X-Mock-Status */
    REQUEST_CONTROL_SIZE,    /* X-Mock-Size */
    REQUEST_CONTROL_FAULT,   /* X-Mock-Fault */
    REQUEST_CONTROL_DRIBBLE, /* X-Mock-Dribble */
    REQUEST_CONTROL_RATE,    /* X-Mock-Rate */
    REQUEST_CONTROL_COUNT,
};

/* A field's value (OWS trimmed, pointing into the request's buffer) and length; NULL when absent. */
struct request_control_value {
    const char *value;
    size_t len;
};

struct request_controls {
    struct request_control_value of[REQUEST_CONTROL_COUNT];
};

/* The control a header field name names (any case, as HTTP/1 sends it; HTTP/2 names are lower
 * case), or -1. Costs one byte test for most fields: every name starts "x-mock-". */
int request_control_of_header(const char *name, size_t name_len);

/* The header's name as the README and error texts spell it ("X-Mock-Delay"). */
const char *request_control_header_name(enum request_control control);

/* The control's query parameter ("delay"). */
const char *request_control_query_name(enum request_control control);

/* Reads every control from a query string ("delay=5ms&size=1k&x=1", without the '?') in one pass,
 * the first of each name; values stay as sent (percent-decoding is the handler's). A parameter
 * without '=' is not a control. Leaves `out` alone for controls the query does not name. */
void request_controls_from_query(const char *query, size_t len, struct request_controls *out);

/* Keeps `value` for `control` unless an earlier field of that name was kept. */
static inline void request_controls_keep_first(struct request_controls *controls, int control, const char *value, size_t len)
{
    if (control >= 0 && controls->of[control].value == NULL)
        controls->of[control] = (struct request_control_value){value, len};
}

#endif
