/* Intrusive circular doubly-linked list: the run queue and every waiter
   queue.  An unlinked node points to itself, so removal is idempotent. */
#ifndef GREEN_LIST_H_INCLUDED
#define GREEN_LIST_H_INCLUDED

#include <stddef.h>

struct green__list {
    struct green__list *next; /* toward the tail */
    struct green__list *prev; /* toward the head */
};

static inline void green__list_init(struct green__list *l)
{
    l->next = l;
    l->prev = l;
}

static inline int green__list_empty(const struct green__list *l)
{
    return l->next == l;
}

/* A node is linked iff it does not point to itself. */
static inline int green__list_linked(const struct green__list *n)
{
    return n->next != n;
}

static inline void green__list_push(struct green__list *l,
                                    struct green__list *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static inline void green__list_remove(struct green__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n;
    n->prev = n;
}

/* Pop the head, or NULL when empty. */
static inline struct green__list *green__list_pop(struct green__list *l)
{
    struct green__list *n = l->next;
    if (n == l)
        return NULL;
    green__list_remove(n);
    return n;
}

#define green__list_foreach(it, l) \
    for ((it) = (l)->next; (it) != (l); (it) = (it)->next)

#endif
