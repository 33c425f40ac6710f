/* body_fill: response bodies of any size without an allocation per request.
 *
 * One region per worker, reserved once (mmap, --max-response-size bytes of address space, no
 * memory) and filled on demand with the configured body repeated: a body of N bytes is the region's
 * first N bytes. The region never moves and filled bytes never change, so a response may point into
 * it for as long as it takes to send (a slow reader, a held HTTP/2 stream). Memory grows to the
 * largest size actually served, in pages, and is never given back (it is what that size costs
 * anyway while it is being sent). */
#ifndef MOCKUPSTREAM_BODY_FILL_H
#define MOCKUPSTREAM_BODY_FILL_H

#include <stddef.h>
#include <stdint.h>

struct body_fill {
    char *base;           /* the reserved region, or NULL before body_fill_init */
    size_t reserved_bytes;
    size_t filled_bytes;  /* [0, filled_bytes) holds the pattern */
    const char *pattern;  /* repeated to fill: the configured body (or a default text if it is empty) */
    size_t pattern_bytes;
};

/* Reserves `max_bytes` of address space for bodies built from `pattern`. Returns 0, or -1 (errno). */
int body_fill_init(struct body_fill *fill, const char *pattern, size_t pattern_bytes, size_t max_bytes);

/* The first `bytes` bytes of the fill (bytes <= max_bytes), filling what is missing. */
const char *body_fill_get(struct body_fill *fill, size_t bytes);

void body_fill_dispose(struct body_fill *fill);

#endif
