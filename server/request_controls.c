#include "request_controls.h"

#include <string.h>

static const char *const header_names[REQUEST_CONTROL_COUNT] = {
    [REQUEST_CONTROL_DELAY] = "X-Mock-Delay",     [REQUEST_CONTROL_STATUS] = "X-Mock-Status",
    [REQUEST_CONTROL_SIZE] = "X-Mock-Size",       [REQUEST_CONTROL_FAULT] = "X-Mock-Fault",
    [REQUEST_CONTROL_DRIBBLE] = "X-Mock-Dribble", [REQUEST_CONTROL_RATE] = "X-Mock-Rate",
};

static const char *const query_names[REQUEST_CONTROL_COUNT] = {
    [REQUEST_CONTROL_DELAY] = "delay", [REQUEST_CONTROL_STATUS] = "status",   [REQUEST_CONTROL_SIZE] = "size",
    [REQUEST_CONTROL_FAULT] = "fault", [REQUEST_CONTROL_DRIBBLE] = "dribble", [REQUEST_CONTROL_RATE] = "rate",
};

#define PREFIX_BYTES 7 /* "x-mock-" */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

int request_control_of_header(const char *name, size_t name_len)
{
    if (name_len <= PREFIX_BYTES || lower(name[0]) != 'x')
        return -1;
    for (int control = 0; control < REQUEST_CONTROL_COUNT; control++) {
        const char *want = header_names[control];
        if (strlen(want) != name_len)
            continue;
        size_t i = 0;
        while (i < name_len && lower(name[i]) == lower(want[i]))
            i++;
        if (i == name_len)
            return control;
    }
    return -1;
}

const char *request_control_header_name(enum request_control control)
{
    return control < REQUEST_CONTROL_COUNT ? header_names[control] : "X-Mock-?";
}

const char *request_control_query_name(enum request_control control)
{
    return control < REQUEST_CONTROL_COUNT ? query_names[control] : "?";
}

void request_controls_from_query(const char *query, size_t len, struct request_controls *out)
{
    const char *p = query, *end = query + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *item_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(item_end - p));
        if (eq != NULL) {
            size_t name_len = (size_t)(eq - p);
            for (int control = 0; control < REQUEST_CONTROL_COUNT; control++) {
                if (strlen(query_names[control]) == name_len && memcmp(p, query_names[control], name_len) == 0) {
                    request_controls_keep_first(out, control, eq + 1, (size_t)(item_end - eq - 1));
                    break;
                }
            }
        }
        p = item_end + 1;
    }
}
