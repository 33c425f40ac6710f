/* stats_json: a JSON document assembled from (dotted path, value) pairs, for the /stats renderer.
 *
 * The metric table names where each figure goes ("connections.by_listener.tls.open"); figures of one
 * object come from several table rows, so they cannot be written as they come. The tree keeps every
 * object's keys in the order they were first put and writes the document once at the end. Values are
 * JSON fragments (numbers, strings, null, arrays) the caller formats. Putting the same path twice, or
 * a path through a value, is a bug in the table: the tree marks itself failed, and the caller answers
 * 500 rather than serve a document with duplicate keys. Keys never contain '.'. */
#ifndef MOCKUPSTREAM_STATS_JSON_H
#define MOCKUPSTREAM_STATS_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

struct stats_json_node;

struct stats_json {
    struct stats_json_node *nodes; /* nodes[0] is the root object */
    size_t count, cap;
    struct strbuf text; /* keys and value fragments, referred to by offset */
    bool failed;
};

void stats_json_init(struct stats_json *doc);
void stats_json_free(struct stats_json *doc);

/* Sets `path` (keys joined by '.') to the JSON fragment `value`, creating the objects on the way. */
void stats_json_put(struct stats_json *doc, const char *path, const char *value, size_t value_len);

/* Writes the document (one line, no spaces); appends nothing if the document failed. */
void stats_json_write(const struct stats_json *doc, struct strbuf *out);

#endif
