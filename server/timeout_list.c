#include "timeout_list.h"

#include "clock.h"

static void on_timer(struct ev_loop *loop, ev_timer *timer, int revents)
{
    struct timeout_list *list = timer->data;
    uint64_t now_ns = clock_monotonic_ns();
    while (list->head != NULL && list->head->deadline_ns <= now_ns) {
        struct timeout_node *expired = list->head;
        list->on_expired(list, expired);
        if (list->head == expired)
            timeout_list_remove(list, expired);
    }
    if (list->head != NULL) {
        ev_timer_set(timer, clock_ns_to_ev_seconds(list->head->deadline_ns - now_ns), 0.);
        ev_timer_start(loop, timer);
    }
}

void timeout_list_init(struct timeout_list *list, struct ev_loop *loop, uint64_t timeout_ns, timeout_expired_cb on_expired,
                       void *data)
{
    list->head = list->tail = NULL;
    list->timeout_ns = timeout_ns;
    list->loop = loop;
    list->on_expired = on_expired;
    list->data = data;
    ev_init(&list->timer, on_timer);
    list->timer.data = list;
}

void timeout_list_append(struct timeout_list *list, struct timeout_node *node, uint64_t now_ns)
{
    node->deadline_ns = now_ns + list->timeout_ns;
    node->prev = list->tail;
    node->next = NULL;
    if (list->tail != NULL) {
        list->tail->next = node;
    } else {
        list->head = node;
        if (!ev_is_active(&list->timer)) {
            ev_timer_set(&list->timer, clock_ns_to_ev_seconds(list->timeout_ns), 0.);
            ev_timer_start(list->loop, &list->timer);
        }
    }
    list->tail = node;
}

void timeout_list_remove(struct timeout_list *list, struct timeout_node *node)
{
    if (node->prev != NULL)
        node->prev->next = node->next;
    else
        list->head = node->next;
    if (node->next != NULL)
        node->next->prev = node->prev;
    else
        list->tail = node->prev;
    node->prev = node->next = NULL;
}
