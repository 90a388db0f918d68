/* The greenlet lifecycle's internals (greenlet.c), for the hub's
   dispatch and teardown. */
#ifndef GREEN_GREENLET_H_INCLUDED
#define GREEN_GREENLET_H_INCLUDED

#include "hub.h"

/* The running greenlet g returned or exited: it becomes DONE, its
   joiners wake, its links are queued, and it switches away for good. */
_Noreturn void green__finish(struct green *g);

/* Run the link callbacks of the greenlets on hub->linkq (hub context). */
void green__run_links(struct green__hub *hub);

/* Drop one reference; the last one frees the control block. */
void green__unref(struct green *g);

/* Greenlet-local storage (local.c): run the destructors of g's values
   (pthread's rounds) and free them.  For the greenlet's end, and for
   main and the hub greenlet when the hub goes away. */
struct green__local;
void green__locals_release(struct green *g);
/* The calling thread's hub is being freed: forget local.c's cache. */
void green__locals_hub_gone(void);

#endif
