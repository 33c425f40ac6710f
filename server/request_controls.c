#include "request_controls.h"

#include <string.h>

static const char *const header_names[REQUEST_CONTROL_COUNT] = {
    [REQUEST_CONTROL_DELAY] = "X-Mock-Delay",     [REQUEST_CONTROL_STATUS] = "X-Mock-Status",
    [REQUEST_CONTROL_SIZE] = "X-Mock-Size",       [REQUEST_CONTROL_FAULT] = "X-Mock-Fault",
    [REQUEST_CONTROL_DRIBBLE] = "X-Mock-Dribble", [REQUEST_CONTROL_RATE] = "X-Mock-Rate",
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
