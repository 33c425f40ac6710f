/* h2o_glue: see h2o_glue.h. The only file that relies on h2o 2.2.5 internals. */
#include "h2o_glue.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <h2o/http2.h>

#include "hpack_scan.h"

/* Mirrors lib/common/socket/evloop/epoll.c.h of h2o 2.2.5:
 *   struct st_h2o_evloop_epoll_t { h2o_evloop_t super; int ep; };
 * h2o has no getter for the epoll fd; the layout is checked at run time below. */
struct h2o_glue_evloop_epoll_layout {
    h2o_evloop_t super;
    int ep;
};

/* Mirrors include/h2o/http2_internal.h of h2o 2.2.5 (a header Debian does not install: it needs
 * khash.h): the HPACK decoder's dynamic table, a ring buffer whose newest entry is at
 * entry_start_index. Checked for plausibility on every use (h2o_hpack_parse_headers below). */
struct h2o_glue_hpack_entry_layout {
    h2o_iovec_t *name;
    h2o_iovec_t *value;
    const char *err_desc;
};
struct h2o_glue_hpack_table_layout {
    struct h2o_glue_hpack_entry_layout *entries;
    size_t num_entries, entry_capacity, entry_start_index;
    size_t hpack_size;         /* sum of (name + value + 32) */
    size_t hpack_capacity;     /* after size updates */
    size_t hpack_max_capacity; /* SETTINGS_HEADER_TABLE_SIZE: H2O_HTTP2_SETTINGS_DEFAULT's for the input table */
};

/* Bounds the loop in h2o_glue_run_until_idle: a timeout that keeps re-arming itself at zero must not
 * starve libev's other watchers; the worker comes back on its next iteration. */
#define RUN_UNTIL_IDLE_MAX_ROUNDS 16

/* A refused header block is still fed to h2o, minus the fields, so that its HPACK dynamic table stays
 * in step with the client's: the representations that change the table go through h2o this many at a
 * time into a scratch request whose memory is released after each batch. */
#define TABLE_REPLAY_BATCH 64

/* libh2o's prototype, with its types left opaque where their header is not installed */
struct st_h2o_hpack_header_table_t;
struct st_h2o_cache_digests_t;
int h2o_hpack_parse_headers(h2o_req_t *req, struct st_h2o_hpack_header_table_t *header_table, const uint8_t *src, size_t len,
                            int *pseudo_header_exists_map, size_t *content_length, struct st_h2o_cache_digests_t **digests,
                            const char **err_desc);
typedef int (*parse_headers_fn)(h2o_req_t *req, struct st_h2o_hpack_header_table_t *header_table, const uint8_t *src, size_t len,
                                int *pseudo_header_exists_map, size_t *content_length, struct st_h2o_cache_digests_t **digests,
                                const char **err_desc);

/* Process-wide, written once by h2o_glue_init() in the master before forking, read-only afterwards. */
static struct {
    parse_headers_fn library_parse_headers; /* libh2o's own h2o_hpack_parse_headers */
    size_t max_list_bytes, max_fields;
} guard;

/* Marks a request whose header block was refused: a header whose name is this object (h2o compares
 * tokens by address, and this one is outside h2o's token table, so no client field can be it). Its
 * value is the refusal text. Never written; not const because h2o stores names as non-const. */
static h2o_token_t header_list_refusal_marker = {{H2O_STRLIT("x-mockupstream-header-list-refused")}};

/* ---- start-up guards ---- */

/* h2o 2.2.5 answers an HTTP/2 request carrying a field whose token has `http2_should_reject` with a
 * connection-level PROTOCOL_ERROR (lib/http2/hpack.c, h2o_hpack_parse_headers): every other stream
 * of the connection dies with it. Real clients send such fields (Mint/Finch send `connection:
 * keep-alive`), and nginx serves them. The token table `h2o__tokens` is writable data in the shared
 * library, so the flag is cleared here, once, before any connection exists; the handler then sees the
 * fields, ignores the connection-specific ones, refuses `te` other than "trailers" with a 400 on that
 * stream only (RFC 9113 8.2.2), and counts both. `host` is cleared too: h2o dropped it silently, so
 * a request with `host` but no `:authority` could not be told from one with neither (RFC 9113 8.3.1).
 * (`keep-alive` has no flag in 2.2.5 and `proxy-connection` is no token: both already pass.) */
static void tokens_accept_connection_specific_fields(void)
{
    h2o_token_t *const accepted[] = {H2O_TOKEN_CONNECTION, H2O_TOKEN_TRANSFER_ENCODING, H2O_TOKEN_UPGRADE,
                                     H2O_TOKEN_HTTP2_SETTINGS, H2O_TOKEN_TE, H2O_TOKEN_HOST};
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
        accepted[i]->http2_should_reject = 0;
}

int h2o_glue_init(size_t max_list_bytes, size_t max_fields, char *err, size_t err_size)
{
    /* The header-block guard wraps libh2o's exported h2o_hpack_parse_headers by ELF symbol
     * interposition: libh2o-evloop.so calls it through its PLT (a JUMP_SLOT relocation), so the
     * definition below, in the executable, is the one it reaches; RTLD_NEXT finds the library's. If the
     * library ever binds the call internally (static link, -Bsymbolic), refuse to start rather than
     * run unguarded. */
    guard.library_parse_headers = (parse_headers_fn)dlsym(RTLD_NEXT, "h2o_hpack_parse_headers");
    if (guard.library_parse_headers == NULL || guard.library_parse_headers == h2o_hpack_parse_headers) {
        snprintf(err, err_size, "libh2o's h2o_hpack_parse_headers was not found behind the HPACK guard (libh2o linked statically?)");
        return -1;
    }
    if ((parse_headers_fn)dlsym(RTLD_DEFAULT, "h2o_hpack_parse_headers") != h2o_hpack_parse_headers) {
        snprintf(err, err_size, "the HPACK guard does not interpose libh2o's h2o_hpack_parse_headers (not exported?)");
        return -1;
    }
    if (H2O_HTTP2_SETTINGS_DEFAULT.header_table_size > HPACK_SCAN_MAX_TABLE_BYTES) {
        snprintf(err, err_size, "h2o decodes HPACK with a table of %u bytes; the HPACK guard follows at most %d",
                 (unsigned)H2O_HTTP2_SETTINGS_DEFAULT.header_table_size, HPACK_SCAN_MAX_TABLE_BYTES);
        return -1;
    }
    guard.max_list_bytes = max_list_bytes;
    guard.max_fields = max_fields;
    tokens_accept_connection_specific_fields();
    return 0;
}

/* ---- the header-block guard ---- */

static void table_entry(const void *ctx, size_t index, struct hpack_scan_field *out)
{
    /* as h2o_hpack_header_table_get() in http2_internal.h */
    const struct h2o_glue_hpack_table_layout *table = ctx;
    size_t slot = index + table->entry_start_index; /* both below entry_capacity: one wrap at most */
    if (slot >= table->entry_capacity)
        slot -= table->entry_capacity;
    const struct h2o_glue_hpack_entry_layout *entry = &table->entries[slot];
    out->name_bytes = (uint32_t)entry->name->len;
    out->value_bytes = (uint32_t)entry->value->len;
    out->name_is_pseudo = entry->name->len != 0 && entry->name->base[0] == ':';
}

/* Feeds h2o only the representations of src[0..len) that change its dynamic table, into a scratch
 * request released every TABLE_REPLAY_BATCH of them: the table ends as if the whole block had been
 * decoded, while memory stays bounded by a batch. Returns 0 or h2o's (connection) error. */
static int replay_table_changes(struct st_h2o_hpack_header_table_t *table, const uint8_t *src, size_t len, const char **err_desc)
{
    h2o_req_t scratch;
    memset(&scratch, 0, sizeof(scratch));
    h2o_mem_init_pool(&scratch.pool);
    int ret = 0;
    size_t off = 0;
    while (off < len && ret == 0) {
        /* skip representations that leave the table alone, then take a run of ones that change it */
        size_t run_start = off, run_count = 0;
        while (off < len && run_count < TABLE_REPLAY_BATCH) {
            enum hpack_scan_representation kind;
            ssize_t rep_len = hpack_scan_next_representation(src + off, len - off, &kind);
            if (rep_len < 0) { /* cannot happen after a successful scan; end rather than loop */
                off = len;
                break;
            }
            if (hpack_scan_changes_table(kind))
                run_count++;
            else if (run_count != 0)
                break; /* the run ends before this one */
            else
                run_start = off + (size_t)rep_len;
            off += (size_t)rep_len;
        }
        if (run_count == 0)
            continue;
        size_t ignored_content_length;
        const char *soft_err = NULL;
        int r = guard.library_parse_headers(&scratch, table, src + run_start, off - run_start, NULL, &ignored_content_length,
                                            NULL, &soft_err);
        if (r != 0 && r != H2O_HTTP2_ERROR_INVALID_HEADER_CHAR) {
            *err_desc = soft_err;
            ret = r;
        }
        h2o_mem_clear_pool(&scratch.pool);
        scratch.headers = (h2o_headers_t){NULL};
    }
    h2o_mem_clear_pool(&scratch.pool);
    return ret;
}

static void existing_fields(const h2o_req_t *req, uint64_t *bytes, uint64_t *fields)
{
    for (size_t i = 0; i < req->headers.size; i++)
        *bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    *fields += req->headers.size;
}

/* The fast path, taken by most benchmark requests (a few bytes of references into a small table):
 * true if the block cannot decode past the limits whatever it holds, so it need not be scanned. Every
 * field takes at least one byte of the block, and decodes to at most the largest dynamic-table entry
 * (no larger than the whole table), a static entry (under 64 bytes), or an entry this block inserts
 * (at most 8/5 of the block, Huffman's best ratio), plus a literal value of at most 8/5 of its own
 * bytes. */
static bool block_within_limits_for_sure(const struct h2o_glue_hpack_table_layout *table, size_t len)
{
    size_t largest_field_bytes = table->hpack_size > 2 * len ? table->hpack_size : 2 * len;
    if (largest_field_bytes < 64)
        largest_field_bytes = 64;
    return len <= guard.max_fields && len * (largest_field_bytes + 2) <= guard.max_list_bytes;
}

/* Wraps libh2o 2.2.5's function of the same name (called for a request's header block and for its
 * trailers). Differences from the library's: cache-digest fields are never decoded (digests is not
 * passed on), and a block whose decoded list would pass the limits is not decoded into the request. */
int h2o_hpack_parse_headers(h2o_req_t *req, struct st_h2o_hpack_header_table_t *header_table, const uint8_t *src, size_t len,
                            int *pseudo_header_exists_map, size_t *content_length, struct st_h2o_cache_digests_t **digests,
                            const char **err_desc)
{
    if (guard.library_parse_headers == NULL)
        h2o_fatal("h2o_glue_init() was not called before serving HTTP/2");
    const struct h2o_glue_hpack_table_layout *table = (const struct h2o_glue_hpack_table_layout *)header_table;
    if (table->hpack_max_capacity != H2O_HTTP2_SETTINGS_DEFAULT.header_table_size || table->num_entries > table->entry_capacity ||
        table->hpack_capacity > table->hpack_max_capacity)
        h2o_fatal("h2o's HPACK table layout is not what this build expects (h2o_glue.c)");
    if (pseudo_header_exists_map != NULL && block_within_limits_for_sure(table, len))
        return guard.library_parse_headers(req, header_table, src, len, pseudo_header_exists_map, content_length, NULL, err_desc);
    struct hpack_scan_table_view view = {.num_entries = table->num_entries,
                                         .size_bytes = table->hpack_size,
                                         .capacity_bytes = table->hpack_capacity,
                                         .max_capacity_bytes = table->hpack_max_capacity,
                                         .get = table_entry,
                                         .ctx = table};
    struct hpack_scan_result scan;
    if (hpack_scan_block(&view, src, len, &scan) != 0) {
        /* h2o's decoder fails on this block too, at the latest where the scan did */
        *content_length = SIZE_MAX;
        *err_desc = "invalid HPACK header block";
        return H2O_HTTP2_ERROR_COMPRESSION;
    }
    uint64_t list_bytes = scan.field_bytes, fields = scan.regular_fields;
    if (pseudo_header_exists_map == NULL) /* trailers add to the fields the request already has */
        existing_fields(req, &list_bytes, &fields);
    if (list_bytes <= guard.max_list_bytes && fields <= guard.max_fields)
        return guard.library_parse_headers(req, header_table, src, len, pseudo_header_exists_map, content_length, NULL, err_desc);

    /* Refused: decode the pseudo-header fields at the front (so h2o can route the stream to the
     * handler, which answers 431), then only what the dynamic table needs. */
    *content_length = SIZE_MAX;
    if (scan.pseudo_prefix_bytes != 0) {
        int ret = guard.library_parse_headers(req, header_table, src, scan.pseudo_prefix_bytes, pseudo_header_exists_map,
                                              content_length, NULL, err_desc);
        if (ret != 0 && ret != H2O_HTTP2_ERROR_INVALID_HEADER_CHAR)
            return ret;
        *err_desc = NULL;
    }
    int ret = replay_table_changes(header_table, src + scan.pseudo_prefix_bytes, len - scan.pseudo_prefix_bytes, err_desc);
    if (ret != 0)
        return ret;
    char *text = h2o_mem_alloc_pool(&req->pool, 256);
    int text_len = snprintf(text, 256,
                            "request header fields too large: %llu bytes in %llu fields decoded from a %zu-byte HPACK block "
                            "(limits: %zu bytes, %zu fields)\n",
                            (unsigned long long)list_bytes, (unsigned long long)fields, len, guard.max_list_bytes,
                            guard.max_fields);
    h2o_add_header(&req->pool, &req->headers, &header_list_refusal_marker, NULL, text,
                   text_len < 256 ? (size_t)text_len : 255);
    return 0;
}

const char *h2o_glue_header_list_refusal(const h2o_req_t *req, size_t *len)
{
    ssize_t at = h2o_find_header(&req->headers, &header_list_refusal_marker, -1);
    if (at < 0)
        return NULL;
    *len = req->headers.entries[at].value.len;
    return req->headers.entries[at].value.base;
}

bool h2o_glue_authority_was_absent(const h2o_req_t *req)
{
    /* lib/core/request.c (setup_before_processing) points a missing authority at the host's own */
    return req->hostconf != NULL && req->input.authority.base == req->hostconf->authority.hostport.base;
}

/* ---- the loop ---- */

int h2o_glue_epoll_fd(h2o_evloop_t *loop, int *out_fd, char *err, size_t err_size)
{
    int fd = ((struct h2o_glue_evloop_epoll_layout *)loop)->ep;
    char proc_path[64], target[64];
    snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", fd);
    ssize_t n = fd >= 0 ? readlink(proc_path, target, sizeof(target) - 1) : -1;
    if (n < 0) {
        snprintf(err, err_size, "h2o's event loop layout is not what this build expects (fd %d unreadable)", fd);
        return -1;
    }
    target[n] = '\0';
    if (strcmp(target, "anon_inode:[eventpoll]") != 0) {
        snprintf(err, err_size, "h2o's event loop layout is not what this build expects (fd %d is %s, not an epoll fd)", fd,
                 target);
        return -1;
    }
    *out_fd = fd;
    return 0;
}

static uint64_t wall_clock_ms(void)
{
    /* h2o 2.2.5 keeps time as gettimeofday() milliseconds (evloop.c.h, update_now); same units */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void h2o_glue_clock_refresh(h2o_evloop_t *loop)
{
    /* What h2o_evloop_run() does before polling. The Date cache (h2o_get_timestamp) is keyed by this
     * value, so it follows; timers compare against it, so anything armed after this starts now. */
    loop->_now = wall_clock_ms();
}

bool h2o_glue_has_pending_io(h2o_evloop_t *loop)
{
    return loop->_pending_as_client != NULL || loop->_pending_as_server != NULL || loop->_statechanged.head != NULL;
}

bool h2o_glue_has_pending_work(h2o_evloop_t *loop)
{
    return h2o_glue_has_pending_io(loop) || h2o_timeout_get_wake_at(&loop->_timeouts) <= wall_clock_ms();
}

void h2o_glue_run_until_idle(h2o_evloop_t *loop)
{
    for (int round = 0; round < RUN_UNTIL_IDLE_MAX_ROUNDS; round++) {
        h2o_evloop_run(loop, 0);
        if (!h2o_glue_has_pending_work(loop))
            return;
    }
}

uint64_t h2o_glue_next_timeout_ms(h2o_evloop_t *loop)
{
    uint64_t wake_at = h2o_timeout_get_wake_at(&loop->_timeouts);
    if (wake_at == UINT64_MAX)
        return UINT64_MAX;
    uint64_t now = wall_clock_ms();
    return wake_at <= now ? 0 : wake_at - now;
}

size_t h2o_glue_http2_connections(h2o_context_t *ctx, const void **out, size_t max)
{
    /* the list links h2o_http2_conn_t._conns; the link's address serves as the connection's id */
    size_t n = 0;
    for (h2o_linklist_t *node = ctx->http2._conns.next; node != &ctx->http2._conns; node = node->next, n++)
        if (n < max)
            out[n] = node;
    return n;
}

const void *h2o_glue_http2_oldest_connection(h2o_context_t *ctx)
{
    return h2o_linklist_is_empty(&ctx->http2._conns) ? NULL : ctx->http2._conns.next;
}
