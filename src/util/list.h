/*
 * Intrusive circular doubly-linked list.
 *
 * Objects embed a struct list_node and are linked without extra allocations;
 * container_of() gets the object back from its node. A node that is not on a
 * list points to itself, so list_remove() is safe to call twice and
 * list_node_linked() tells whether a node is on a list.
 */
#ifndef PIPER_LIST_H
#define PIPER_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
    struct list_node *next;
    struct list_node *prev;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list_node *head)
{
    head->next = head;
    head->prev = head;
}

static inline bool list_empty(const struct list_node *head)
{
    return head->next == head;
}

static inline bool list_node_linked(const struct list_node *node)
{
    return node->next != node;
}

static inline void list_insert_before(struct list_node *at, struct list_node *node)
{
    node->prev = at->prev;
    node->next = at;
    at->prev->next = node;
    at->prev = node;
}

static inline void list_append(struct list_node *head, struct list_node *node)
{
    list_insert_before(head, node);
}

static inline void list_remove(struct list_node *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    list_init(node);
}

static inline struct list_node *list_first(const struct list_node *head)
{
    return list_empty(head) ? NULL : head->next;
}

static inline struct list_node *list_pop(struct list_node *head)
{
    struct list_node *node = list_first(head);
    if (node != NULL)
        list_remove(node);
    return node;
}

#endif
