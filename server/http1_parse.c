#include "http1_parse.h"

#include <string.h>

#include "picohttpparser.h"

static bool token_equals(const char *s, size_t len, const char *lower)
{
    size_t n = strlen(lower);
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != lower[i])
            return false;
    }
    return true;
}

/* RFC 9110 tchar, as a table: header names are checked byte by byte on every request. */
static const bool tchar_table[256] = {
    ['!'] = true, ['#'] = true, ['$'] = true, ['%'] = true, ['&'] = true, ['\''] = true, ['*'] = true,
    ['+'] = true, ['-'] = true, ['.'] = true, ['^'] = true, ['_'] = true, ['`'] = true, ['|'] = true,
    ['~'] = true,
    ['0'] = true, ['1'] = true, ['2'] = true, ['3'] = true, ['4'] = true, ['5'] = true, ['6'] = true,
    ['7'] = true, ['8'] = true, ['9'] = true,
    ['A'] = true, ['B'] = true, ['C'] = true, ['D'] = true, ['E'] = true, ['F'] = true, ['G'] = true,
    ['H'] = true, ['I'] = true, ['J'] = true, ['K'] = true, ['L'] = true, ['M'] = true, ['N'] = true,
    ['O'] = true, ['P'] = true, ['Q'] = true, ['R'] = true, ['S'] = true, ['T'] = true, ['U'] = true,
    ['V'] = true, ['W'] = true, ['X'] = true, ['Y'] = true, ['Z'] = true,
    ['a'] = true, ['b'] = true, ['c'] = true, ['d'] = true, ['e'] = true, ['f'] = true, ['g'] = true,
    ['h'] = true, ['i'] = true, ['j'] = true, ['k'] = true, ['l'] = true, ['m'] = true, ['n'] = true,
    ['o'] = true, ['p'] = true, ['q'] = true, ['r'] = true, ['s'] = true, ['t'] = true, ['u'] = true,
    ['v'] = true, ['w'] = true, ['x'] = true, ['y'] = true, ['z'] = true,
};

static bool is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!tchar_table[(unsigned char)s[i]])
            return false;
    return true;
}

static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* True if a comma-separated header value ("a, keep-alive") has `lower_token` as one element. */
static bool list_contains(const char *value, size_t len, const char *lower_token)
{
    const char *end = value + len;
    while (value < end) {
        const char *comma = memchr(value, ',', (size_t)(end - value));
        const char *item = value;
        size_t item_len = (size_t)((comma ? comma : end) - value);
        trim(&item, &item_len);
        if (token_equals(item, item_len, lower_token))
            return true;
        value = comma ? comma + 1 : end;
    }
    return false;
}

static int parse_content_length(const char *value, size_t len, uint64_t *out)
{
    trim(&value, &len);
    if (len == 0 || len > 19)
        return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(value[i] - '0');
    }
    *out = n;
    return 0;
}

static bool path_is_valid(const char *path, size_t len)
{
    if (len == 0)
        return false;
    if (path[0] == '/' || (len == 1 && path[0] == '*'))
        return true;
    /* absolute-form, as proxies send it */
    return (len > 7 && memcmp(path, "http://", 7) == 0) || (len > 8 && memcmp(path, "https://", 8) == 0);
}

static int refuse(int *error_status, int status)
{
    *error_status = status;
    return -1;
}

int http1_request_parse(const char *buf, size_t len, struct http1_request *req, int *error_status)
{
    struct phr_header headers[HTTP1_MAX_HEADERS];
    size_t num_headers = HTTP1_MAX_HEADERS;
    size_t scan_len = len < HTTP1_MAX_HEAD_BYTES ? len : HTTP1_MAX_HEAD_BYTES;

    memset(req, 0, sizeof(*req));
    int head = phr_parse_request(buf, scan_len, &req->method, &req->method_len, &req->path, &req->path_len,
                                 &req->minor_version, headers, &num_headers, 0);
    if (head == -2)
        return scan_len == HTTP1_MAX_HEAD_BYTES ? refuse(error_status, 431) : -2;
    if (head < 0) {
        /* picohttpparser also fails when the header array is full: that is "too many headers" */
        if (num_headers == HTTP1_MAX_HEADERS)
            return refuse(error_status, 431);
        return refuse(error_status, 400);
    }
    if (!is_token(req->method, req->method_len) || !path_is_valid(req->path, req->path_len) ||
        (req->minor_version != 0 && req->minor_version != 1))
        return refuse(error_status, 400);
    req->head_bytes = (size_t)head;
    req->keep_alive = req->minor_version == 1;

    bool have_length = false, have_transfer_encoding = false, have_host = false, have_h2_settings = false;
    bool upgrade_to_h2c = false, connection_upgrade = false;
    for (size_t i = 0; i < num_headers; i++) {
        const struct phr_header *h = &headers[i];
        /* a NULL name is an obsolete line folding (continuation line): refused, as RFC 9112 allows */
        if (h->name == NULL || !is_token(h->name, h->name_len))
            return refuse(error_status, 400);
        if (token_equals(h->name, h->name_len, "content-length")) {
            uint64_t n;
            if (parse_content_length(h->value, h->value_len, &n) != 0 || (have_length && n != req->content_length))
                return refuse(error_status, 400);
            have_length = true;
            req->content_length = n;
        } else if (token_equals(h->name, h->name_len, "transfer-encoding")) {
            /* only a single "chunked" is meaningful to a server that discards bodies */
            const char *v = h->value;
            size_t v_len = h->value_len;
            trim(&v, &v_len);
            if (have_transfer_encoding)
                return refuse(error_status, 400);
            if (!token_equals(v, v_len, "chunked"))
                return refuse(error_status, 501);
            have_transfer_encoding = true;
        } else if (token_equals(h->name, h->name_len, "host")) {
            if (have_host)
                return refuse(error_status, 400);
            have_host = true;
        } else if (token_equals(h->name, h->name_len, "connection")) {
            if (list_contains(h->value, h->value_len, "close"))
                req->keep_alive = false;
            else if (list_contains(h->value, h->value_len, "keep-alive"))
                req->keep_alive = true;
            connection_upgrade |= list_contains(h->value, h->value_len, "upgrade");
        } else if (token_equals(h->name, h->name_len, "expect")) {
            const char *v = h->value;
            size_t v_len = h->value_len;
            trim(&v, &v_len);
            if (!token_equals(v, v_len, "100-continue"))
                return refuse(error_status, 417);
            req->expect_continue = req->minor_version == 1;
        } else if (token_equals(h->name, h->name_len, "upgrade")) {
            upgrade_to_h2c = list_contains(h->value, h->value_len, "h2c");
        } else if (token_equals(h->name, h->name_len, "http2-settings")) {
            have_h2_settings = true;
        }
    }
    /* Both framings at once is the classic request-smuggling shape: refuse rather than pick one. */
    if (have_length && have_transfer_encoding)
        return refuse(error_status, 400);
    if (have_transfer_encoding && req->minor_version == 0)
        return refuse(error_status, 400);
    if (have_transfer_encoding)
        req->body_kind = HTTP1_BODY_CHUNKED;
    else if (have_length && req->content_length > 0)
        req->body_kind = HTTP1_BODY_LENGTH;
    if (req->body_kind == HTTP1_BODY_NONE)
        req->expect_continue = false;
    req->upgrade_h2c = upgrade_to_h2c && connection_upgrade && have_h2_settings && req->minor_version == 1;
    return head;
}

bool http1_looks_like_h2_preface(const char *buf, size_t len)
{
    size_t n = strlen(HTTP1_H2_PREFACE);
    return memcmp(buf, HTTP1_H2_PREFACE, len < n ? len : n) == 0;
}
