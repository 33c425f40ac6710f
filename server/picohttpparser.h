/* picohttpparser: declarations for the parser functions libh2o 2.2.5 exports (it ships no header
 * for them). They must match the copy bundled in h2o 2.2.5 (deps/picohttpparser). */
#ifndef MOCKUPSTREAM_PICOHTTPPARSER_H
#define MOCKUPSTREAM_PICOHTTPPARSER_H

#include <stddef.h>
#include <sys/types.h>

struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Returns bytes of the request head, -2 if incomplete, -1 if invalid. */
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len);

struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
};

/* Decodes chunked data in place: returns bytes left after the end of the body (>= 0), -2 if more is
 * needed, -1 on error; *bufsz becomes the decoded length. */
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

#endif
