/* The sync objects as seen by green_wait_any (lib/io/waitany.c): whether
   an operation on them would complete without waiting, and a notify
   clause (wait.h) that fires when it may.  A watch never takes a token:
   items, units and results stay for the call that takes them. */
#ifndef GREEN_SYNC_H_INCLUDED
#define GREEN_SYNC_H_INCLUDED

#include "core/hub.h"

/* The owner hub of each object (the caller checked obj != NULL). */
struct green__hub *green__event_hub(const green_event_t *e);
struct green__hub *green__result_hub(const green_result_t *r);
struct green__hub *green__queue_hub(const green_queue_t *q);
struct green__hub *green__sem_hub(const green_sem_t *s);

/* 1 if the call would not wait now: green_event_wait, green_result_get,
   green_queue_get (put 0) or green_queue_put (put 1; a closed queue is
   ready: the call fails at once), green_sem_acquire. */
int green__event_ready(const green_event_t *e);
int green__result_ready(const green_result_t *r);
int green__queue_ready(const green_queue_t *q, int put);
int green__sem_ready(const green_sem_t *s);

/* Add a notify clause on the object to w.  It fires with 0 when the
   object may have become ready, with EPIPE when a queue closes, with
   EBADF when the object is freed. */
void green__event_watch(struct green__wait *w, green_event_t *e,
                        struct green__clause *c);
void green__result_watch(struct green__wait *w, green_result_t *r,
                         struct green__clause *c);
void green__queue_watch(struct green__wait *w, green_queue_t *q, int put,
                        struct green__clause *c);
void green__sem_watch(struct green__wait *w, green_sem_t *s,
                      struct green__clause *c);

/* A producer that completes r later (the threadpool's async form) learns
   when the owner frees r first: fn(ctx) runs inside green_result_free.
   fn NULL clears it. */
void green__result_on_free(green_result_t *r, void (*fn)(void *ctx),
                           void *ctx);

#endif
