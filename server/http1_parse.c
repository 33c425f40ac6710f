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

/* RFC 3986 reg-name characters: unreserved / sub-delims ('%' escapes are checked apart). Host
 * values are checked byte by byte on every request, hence a table. */
static const bool reg_name_table[256] = {
    ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true,
    ['-'] = true, ['.'] = true, ['_'] = true, ['~'] = true,
    ['!'] = true, ['$'] = true, ['&'] = true, ['\''] = true, ['('] = true, [')'] = true, ['*'] = true,
    ['+'] = true, [','] = true, [';'] = true, ['='] = true,
};

/* Inside "[...]": IPv6address and IPvFuture use hex digits, ':', '.', 'v' and (IPvFuture)
 * unreserved / sub-delims: a superset is accepted, nothing else. */
static const bool ip_literal_table[256] = {
    ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true,
    ['-'] = true, ['.'] = true, ['_'] = true, ['~'] = true, [':'] = true,
    ['!'] = true, ['$'] = true, ['&'] = true, ['\''] = true, ['('] = true, [')'] = true, ['*'] = true,
    ['+'] = true, [','] = true, [';'] = true, ['='] = true,
};

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* True if s[0..len) is made of `table` characters and well-formed "%HH" escapes. */
static bool chars_valid(const char *s, size_t len, const bool table[256])
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (len - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 2;
        } else if (!table[(unsigned char)s[i]]) {
            return false;
        }
    }
    return true;
}

/* RFC 9110 7.2 / RFC 3986 3.2.2-3.2.3: uri-host [ ":" port ], where uri-host is an [IP-literal] or
 * a reg-name (which covers IPv4address). No userinfo: '@' is not a reg-name character. An empty
 * value is valid (RFC 9112 3.2 lets a client send an empty Host); a port without a host is not. */
static bool authority_is_valid(const char *s, size_t len)
{
    if (len == 0)
        return true;
    size_t i;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL || close == s + 1 || !chars_valid(s + 1, (size_t)(close - s - 1), ip_literal_table))
            return false;
        i = (size_t)(close - s) + 1;
    } else {
        /* one pass up to the port, this runs on every request's Host: a tight table loop, and the
         * byte that stops it is either the port's ':', an escape (rare) or invalid */
        i = 0;
        for (;;) {
            while (i < len && reg_name_table[(unsigned char)s[i]])
                i++;
            if (i == len || s[i] != '%')
                break;
            if (len - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 3;
        }
        if (i == 0)
            return false;
    }
    if (i == len)
        return true;
    if (s[i] != ':')
        return false;
    for (i++; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* True if every '%' in the path part (before any '?') starts a "%HH" escape other than %00 (a NUL
 * would cut the decoded path short for C code). The router decodes (handler.h) and refuses the same
 * escapes; checking here too makes them a malformed request-line, refused before any routing, with
 * the connection closed. The query is not checked: the router never decodes it, and clients send
 * bare '%' in query strings. */
static bool path_escapes_valid(const char *target, size_t len)
{
    const char *p = memchr(target, '%', len);
    if (p == NULL)
        return true; /* the common case: one memchr */
    const char *query = memchr(target, '?', len);
    const char *end = query ? query : target + len;
    for (; p != NULL && p < end; p = memchr(p, '%', (size_t)(end - p))) {
        if (end - p < 3 || !is_hex(p[1]) || !is_hex(p[2]) || (p[1] == '0' && p[2] == '0'))
            return false;
        p += 3;
    }
    return true;
}

static bool prefix_equals_ci(const char *s, size_t len, const char *lower_prefix)
{
    size_t n = strlen(lower_prefix);
    return len >= n && token_equals(s, n, lower_prefix);
}

/* Checks the request-target (RFC 9112 3.2) and reduces an absolute-form one to its path and query,
 * taking its authority. Returns 0, or -1 (400). The method is known not to be CONNECT. */
static int target_parse(struct http1_request *req)
{
    const char *t = req->path;
    size_t len = req->path_len;
    if (t[0] == '/')
        return path_escapes_valid(t, len) ? 0 : -1;
    if (len == 1 && t[0] == '*') /* methods are case-sensitive (RFC 9110 9.1) */
        return req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0 ? 0 : -1;
    size_t scheme_len;
    if (prefix_equals_ci(t, len, "http://"))
        scheme_len = strlen("http://");
    else if (prefix_equals_ci(t, len, "https://"))
        scheme_len = strlen("https://");
    else
        return -1;
    const char *authority = t + scheme_len;
    size_t rest = len - scheme_len, authority_len = 0;
    while (authority_len < rest && authority[authority_len] != '/' && authority[authority_len] != '?')
        authority_len++;
    /* RFC 9110 4.2.1: an http(s) URI with an empty host is invalid; 4.2.4: userinfo is an error */
    if (authority_len == 0 || !authority_is_valid(authority, authority_len))
        return -1;
    req->authority = authority;
    req->authority_len = authority_len;
    const char *path = authority + authority_len;
    size_t path_len = rest - authority_len;
    if (path_len == 0 || path[0] == '?') {
        req->path = "/";
        req->path_len = 1;
        return 0;
    }
    req->path = path;
    req->path_len = path_len;
    return path_escapes_valid(path, path_len) ? 0 : -1;
}

/* True if the request line at buf (after the one empty line picohttpparser skips) is, or is already
 * known to be, longer than HTTP1_MAX_REQUEST_LINE_BYTES. One memchr over at most the limit; used
 * when picohttpparser has not parsed the line (a parsed one is measured from its pointers). */
static bool request_line_too_long(const char *buf, size_t len)
{
    if (len >= 2 && buf[0] == '\r' && buf[1] == '\n') {
        buf += 2;
        len -= 2;
    } else if (len >= 1 && buf[0] == '\n') {
        buf++;
        len--;
    }
    size_t window = len < HTTP1_MAX_REQUEST_LINE_BYTES + 2 ? len : HTTP1_MAX_REQUEST_LINE_BYTES + 2;
    /* without a LF yet, the line is at least the bytes seen, less a CR that may turn out to end it */
    const char *lf = memchr(buf, '\n', window);
    const char *end = lf ? lf : buf + window;
    size_t line_len = (size_t)(end - buf);
    if (line_len > 0 && end[-1] == '\r')
        line_len--;
    return line_len > HTTP1_MAX_REQUEST_LINE_BYTES;
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

/* Sets the status and the one-line reason (a static string) of a refusal; returns -1. */
static int refuse(struct http1_request *req, int *error_status, int status, const char *reason)
{
    req->refusal_reason = reason;
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
    /* A long line is 414 whether or not it is otherwise well-formed or complete, so it is checked
     * before any other refusal. A parsed line is "METHOD SP target SP HTTP/1.x" exactly (h2o 2.2.5's
     * picohttpparser takes one space between them): its length is known without a scan. */
    if (head > 0 ? (size_t)(req->path + req->path_len - req->method) + strlen(" HTTP/1.1") > HTTP1_MAX_REQUEST_LINE_BYTES
                 : request_line_too_long(buf, scan_len))
        return refuse(req, error_status, 414, "request line longer than 8 KiB");
    if (head == -2)
        return scan_len == HTTP1_MAX_HEAD_BYTES ? refuse(req, error_status, 431, "request head larger than 64 KiB") : -2;
    if (head < 0) {
        /* picohttpparser also fails when the header array is full: that is "too many headers" */
        if (num_headers == HTTP1_MAX_HEADERS)
            return refuse(req, error_status, 431, "more than 100 header fields");
        return refuse(req, error_status, 400, "malformed request line or header field");
    }
    if (!is_token(req->method, req->method_len) || req->path_len == 0 || (req->minor_version != 0 && req->minor_version != 1))
        return refuse(req, error_status, 400, "bad method, empty target or HTTP version other than 1.0 and 1.1");
    /* RFC 9110 9.3.6: CONNECT asks for a tunnel, which an origin server does not make. Refused before
     * its authority-form target is looked at, so any CONNECT gets the same clear answer. */
    if (req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0)
        return refuse(req, error_status, 501, "CONNECT: this server makes no tunnels");
    if (target_parse(req) != 0)
        return refuse(req, error_status, 400, "bad request target (allowed: /path, http(s)://host/path, * with OPTIONS; valid %-escapes, no %00)");
    bool absolute_form = req->authority != NULL;
    req->head_bytes = (size_t)head;
    req->keep_alive = req->minor_version == 1;

    bool have_length = false, have_transfer_encoding = false, have_host = false, have_h2_settings = false;
    bool upgrade_to_h2c = false, connection_upgrade = false;
    for (size_t i = 0; i < num_headers; i++) {
        const struct phr_header *h = &headers[i];
        /* a NULL name is an obsolete line folding (continuation line): refused, as RFC 9112 allows */
        if (h->name == NULL || !is_token(h->name, h->name_len))
            return refuse(req, error_status, 400, "obsolete line folding or a bad header field name");
        if (token_equals(h->name, h->name_len, "content-length")) {
            uint64_t n;
            if (parse_content_length(h->value, h->value_len, &n) != 0 || (have_length && n != req->content_length))
                return refuse(req, error_status, 400, "Content-Length not a number, or two that differ");
            have_length = true;
            req->content_length = n;
        } else if (token_equals(h->name, h->name_len, "transfer-encoding")) {
            /* only a single "chunked" is meaningful to a server that discards bodies */
            const char *v = h->value;
            size_t v_len = h->value_len;
            trim(&v, &v_len);
            if (have_transfer_encoding)
                return refuse(req, error_status, 400, "Transfer-Encoding given twice");
            if (!token_equals(v, v_len, "chunked"))
                return refuse(req, error_status, 501, "Transfer-Encoding other than chunked");
            have_transfer_encoding = true;
        } else if (token_equals(h->name, h->name_len, "host")) {
            /* RFC 9112 3.2: two Host lines or an invalid value is a 400, even when an absolute-form
             * target's authority replaces it */
            const char *v = h->value;
            size_t v_len = h->value_len;
            trim(&v, &v_len);
            if (have_host || !authority_is_valid(v, v_len))
                return refuse(req, error_status, 400, "two Host fields, or a Host that is not host[:port]");
            have_host = true;
            if (!absolute_form) {
                req->authority = v;
                req->authority_len = v_len;
            }
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
                return refuse(req, error_status, 417, "Expect other than 100-continue");
            req->expect_continue = req->minor_version == 1;
        } else if (token_equals(h->name, h->name_len, "upgrade")) {
            upgrade_to_h2c = list_contains(h->value, h->value_len, "h2c");
        } else if (token_equals(h->name, h->name_len, "http2-settings")) {
            have_h2_settings = true;
        } else {
            /* X-Mock-*: the first of each counts, as the first of a repeated query parameter does */
            request_controls_keep_first(&req->controls, request_control_of_header(h->name, h->name_len), h->value, h->value_len);
        }
    }
    /* RFC 9112 3.2: an HTTP/1.1 request without Host is a 400 (HTTP/1.0 had no Host: still served) */
    if (!have_host && req->minor_version == 1)
        return refuse(req, error_status, 400, "HTTP/1.1 request without Host");
    /* Both framings at once is the classic request-smuggling shape: refuse rather than pick one. */
    if (have_length && have_transfer_encoding)
        return refuse(req, error_status, 400, "Transfer-Encoding together with Content-Length");
    if (have_transfer_encoding && req->minor_version == 0)
        return refuse(req, error_status, 400, "Transfer-Encoding in HTTP/1.0");
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
