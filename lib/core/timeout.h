/* green_timeout's internals (timeout.c), for the wait primitive and the
   greenlet lifecycle. */
#ifndef GREEN_TIMEOUT_H_INCLUDED
#define GREEN_TIMEOUT_H_INCLUDED

#include "hub.h"

/* src's deadline passed: it and every timeout of g due no later expire. */
void green__timeouts_fire(struct green *g, green_timeout_t *src);

/* The earliest pending deadline of g's timeouts (GREEN__FOREVER if
   none); its timeout is left in g->deadline_src. */
double green__timeouts_deadline(struct green *g);

/* g ended: its timeouts apply to nothing any more.  keep: g's control
   block holds them (green__timeouts_free frees them with it); else they
   stay allocated until cancelled (the main greenlet at shutdown). */
void green__timeouts_detach(struct green *g, int keep);
void green__timeouts_free(struct green *g);

#endif
