/* timeout_list: deadlines that all use the same timeout, behind one libev timer.
 *
 * Every node of a list gets the same timeout, so appending keeps the list sorted by deadline and
 * the timer only needs setting when the list was empty or its head expired (libev's "be smart about
 * timeouts", from its manual): O(1) per append and remove, one timer for thousands of connections.
 * The nodes are embedded in the owner's objects (no allocation). */
#ifndef MOCKUPSTREAM_TIMEOUT_LIST_H
#define MOCKUPSTREAM_TIMEOUT_LIST_H

#include <ev.h>
#include <stdint.h>

struct timeout_list;

struct timeout_node {
    struct timeout_node *prev, *next;
    uint64_t deadline_ns; /* CLOCK_MONOTONIC */
};

/* A node's deadline passed. The callback must take the node out of the list (closing the object
 * that holds it usually does); if it does not, the list removes it afterwards. */
typedef void (*timeout_expired_cb)(struct timeout_list *list, struct timeout_node *node);

struct timeout_list {
    struct timeout_node *head, *tail;
    uint64_t timeout_ns;
    struct ev_loop *loop;
    ev_timer timer;
    timeout_expired_cb on_expired;
    void *data; /* the owner's */
};

void timeout_list_init(struct timeout_list *list, struct ev_loop *loop, uint64_t timeout_ns, timeout_expired_cb on_expired,
                       void *data);

/* Appends `node` (not in any list) with deadline now_ns + the list's timeout. */
void timeout_list_append(struct timeout_list *list, struct timeout_node *node, uint64_t now_ns);

/* Takes `node` out of `list`, which must hold it. */
void timeout_list_remove(struct timeout_list *list, struct timeout_node *node);

#endif
