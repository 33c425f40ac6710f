/* strbuf: a growable byte buffer for rendering text (stats documents, response heads).
 *
 * Appends never fail silently: on allocation failure the buffer is marked `failed`, further appends
 * do nothing, and the caller checks `failed` once at the end. */
#ifndef MOCKUPSTREAM_STRBUF_H
#define MOCKUPSTREAM_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct strbuf {
    char *data;    /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    bool failed;
};

void strbuf_init(struct strbuf *buf);
void strbuf_free(struct strbuf *buf);
void strbuf_clear(struct strbuf *buf);
void strbuf_append(struct strbuf *buf, const char *bytes, size_t len);
void strbuf_append_str(struct strbuf *buf, const char *s);
void strbuf_appendf(struct strbuf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
