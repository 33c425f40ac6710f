#include "body_fill.h"

#include <string.h>
#include <sys/mman.h>

#define BODY_FILL_DEFAULT_PATTERN "Hello world!\n"

int body_fill_init(struct body_fill *fill, const char *pattern, size_t pattern_bytes, size_t max_bytes)
{
    memset(fill, 0, sizeof(*fill));
    if (pattern_bytes == 0) {
        pattern = BODY_FILL_DEFAULT_PATTERN;
        pattern_bytes = strlen(BODY_FILL_DEFAULT_PATTERN);
    }
    fill->pattern = pattern;
    fill->pattern_bytes = pattern_bytes;
    fill->reserved_bytes = max_bytes;
    if (max_bytes == 0)
        return 0;
    /* MAP_NORESERVE: address space only; pages exist once a body that long was served */
    void *p = mmap(NULL, max_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    fill->base = p;
    return 0;
}

const char *body_fill_get(struct body_fill *fill, size_t bytes)
{
    if (bytes > fill->reserved_bytes)
        bytes = fill->reserved_bytes; /* the caller checked; never write past the region */
    if (bytes == 0)
        return "";
    while (fill->filled_bytes < bytes) {
        /* copy the pattern once, then double what is filled: O(bytes) in all */
        size_t n = fill->filled_bytes == 0 ? fill->pattern_bytes : fill->filled_bytes;
        if (n > fill->reserved_bytes - fill->filled_bytes)
            n = fill->reserved_bytes - fill->filled_bytes;
        memcpy(fill->base + fill->filled_bytes, fill->filled_bytes == 0 ? fill->pattern : fill->base, n);
        fill->filled_bytes += n;
    }
    return fill->base;
}

void body_fill_dispose(struct body_fill *fill)
{
    if (fill->base != NULL)
        munmap(fill->base, fill->reserved_bytes);
    fill->base = NULL;
}
