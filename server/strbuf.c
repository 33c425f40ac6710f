#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(struct strbuf *buf)
{
    *buf = (struct strbuf){0};
}

void strbuf_free(struct strbuf *buf)
{
    free(buf->data);
    strbuf_init(buf);
}

void strbuf_clear(struct strbuf *buf)
{
    buf->len = 0;
    if (buf->data != NULL)
        buf->data[0] = '\0';
}

static bool strbuf_reserve(struct strbuf *buf, size_t extra)
{
    if (buf->failed)
        return false;
    if (buf->len + extra + 1 <= buf->cap)
        return true;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + extra + 1)
        cap *= 2;
    char *data = realloc(buf->data, cap);
    if (data == NULL) {
        buf->failed = true;
        return false;
    }
    buf->data = data;
    buf->cap = cap;
    return true;
}

void strbuf_append(struct strbuf *buf, const char *bytes, size_t len)
{
    if (!strbuf_reserve(buf, len))
        return;
    memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void strbuf_append_str(struct strbuf *buf, const char *s)
{
    strbuf_append(buf, s, strlen(s));
}

void strbuf_appendf(struct strbuf *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf->failed = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        strbuf_append(buf, small, (size_t)n);
        return;
    }
    if (!strbuf_reserve(buf, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
}
