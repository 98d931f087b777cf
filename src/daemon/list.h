/* list.h: an intrusive doubly linked list, as every daemon object is kept on one. */
#ifndef PS_DAEMON_LIST_H
#define PS_DAEMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list {
	struct list *prev, *next;
};
#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))
#define list_for_each_safe(pos, tmp, head)                                                                   \
	for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)
static inline void list_init(struct list *l)
{
	l->prev = l->next = l;
}
static inline bool list_empty(const struct list *l)
{
	return l->next == l;
}
static inline void list_add_tail(struct list *head, struct list *e)
{
	e->prev = head->prev;
	e->next = head;
	head->prev->next = e;
	head->prev = e;
}
static inline void list_add_head(struct list *head, struct list *e)
{
	list_add_tail(head->next, e);
}
static inline void list_del(struct list *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	list_init(e);
}

#endif
