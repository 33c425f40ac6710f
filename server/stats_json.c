#include "stats_json.h"

#include <stdlib.h>
#include <string.h>

#define NO_NODE 0 /* the root is node 0 and never anyone's child or sibling */

struct stats_json_node {
    size_t key_off, key_len;
    size_t value_off, value_len;
    bool is_object;
    size_t first_child, last_child, next_sibling;
};

static size_t node_add(struct stats_json *doc, const char *key, size_t key_len, bool is_object)
{
    if (doc->count == doc->cap) {
        size_t cap = doc->cap ? doc->cap * 2 : 128;
        struct stats_json_node *nodes = realloc(doc->nodes, cap * sizeof(*nodes));
        if (nodes == NULL) {
            doc->failed = true;
            return NO_NODE;
        }
        doc->nodes = nodes;
        doc->cap = cap;
    }
    size_t index = doc->count++;
    doc->nodes[index] = (struct stats_json_node){.key_off = doc->text.len, .key_len = key_len, .is_object = is_object};
    strbuf_append(&doc->text, key, key_len);
    return index;
}

void stats_json_init(struct stats_json *doc)
{
    *doc = (struct stats_json){0};
    strbuf_init(&doc->text);
    node_add(doc, "", 0, true);
}

void stats_json_free(struct stats_json *doc)
{
    free(doc->nodes);
    strbuf_free(&doc->text);
    *doc = (struct stats_json){0};
}

/* The child of `parent` called key, created (as an object or a leaf) if absent; NO_NODE on a clash. */
static size_t child_get(struct stats_json *doc, size_t parent, const char *key, size_t key_len, bool leaf)
{
    for (size_t c = doc->nodes[parent].first_child; c != NO_NODE; c = doc->nodes[c].next_sibling) {
        const struct stats_json_node *n = &doc->nodes[c];
        if (n->key_len == key_len && memcmp(doc->text.data + n->key_off, key, key_len) == 0) {
            if (leaf || !n->is_object)
                doc->failed = true; /* a value put twice, or a path through a value */
            return leaf || !n->is_object ? NO_NODE : c;
        }
    }
    size_t c = node_add(doc, key, key_len, !leaf);
    if (c == NO_NODE)
        return NO_NODE;
    struct stats_json_node *p = &doc->nodes[parent];
    if (p->first_child == NO_NODE)
        p->first_child = c;
    else
        doc->nodes[p->last_child].next_sibling = c;
    p->last_child = c;
    return c;
}

void stats_json_put(struct stats_json *doc, const char *path, const char *value, size_t value_len)
{
    size_t node = 0;
    const char *key = path;
    while (!doc->failed) {
        const char *dot = strchr(key, '.');
        size_t key_len = dot ? (size_t)(dot - key) : strlen(key);
        node = child_get(doc, node, key, key_len, dot == NULL);
        if (node == NO_NODE)
            return;
        if (dot == NULL) {
            doc->nodes[node].value_off = doc->text.len;
            doc->nodes[node].value_len = value_len;
            strbuf_append(&doc->text, value, value_len);
            return;
        }
        key = dot + 1;
    }
}

static void write_node(const struct stats_json *doc, size_t index, struct strbuf *out)
{
    const struct stats_json_node *n = &doc->nodes[index];
    if (!n->is_object) {
        strbuf_append(out, doc->text.data + n->value_off, n->value_len);
        return;
    }
    strbuf_append(out, "{", 1);
    for (size_t c = n->first_child; c != NO_NODE; c = doc->nodes[c].next_sibling) {
        if (c != n->first_child)
            strbuf_append(out, ",", 1);
        strbuf_append(out, "\"", 1);
        strbuf_append(out, doc->text.data + doc->nodes[c].key_off, doc->nodes[c].key_len);
        strbuf_append(out, "\":", 2);
        write_node(doc, c, out);
    }
    strbuf_append(out, "}", 1);
}

void stats_json_write(const struct stats_json *doc, struct strbuf *out)
{
    if (doc->failed || doc->text.failed) {
        out->failed = true;
        return;
    }
    write_node(doc, 0, out);
}
