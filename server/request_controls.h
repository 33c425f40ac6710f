/* request_controls: the X-Mock-* header fields a client may send to steer one benchmark answer.
 *
 * One list, read by both protocol paths (the HTTP/1.1 parser and the HTTP/2 front end) and by the
 * handler, so a new control is added here once: its enum value, its header name. What each one
 * means, and how it ranks against the path and the query, is the handler's (handler.h). A path
 * keeps the FIRST field of each name, as the first of a repeated query parameter counts. */
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

/* Keeps `value` for `control` unless an earlier field of that name was kept. */
static inline void request_controls_keep_first(struct request_controls *controls, int control, const char *value, size_t len)
{
    if (control >= 0 && controls->of[control].value == NULL)
        controls->of[control] = (struct request_control_value){value, len};
}

#endif
