/* Internals shared by the process, signal, threadpool and thread modules.

   green_fork (process.c) holds every process-wide and per-hub lock these
   modules own across fork(2), the way pthread_atfork handlers would, so
   the child inherits each structure in a consistent state.  Each module
   exposes one hook called with the phase:
     PREPARE  in the parent before fork: take the locks, in the fixed order
              thread registry -> hub queue -> pool -> signal table -> child
              cache (green_hub_spawn takes registry -> queue, the others
              take one lock at a time, so the order cannot deadlock);
     PARENT   in the parent after fork: release them;
     CHILD    in the child after fork: re-initialise them (the child has
              one thread, so nobody else can hold them), before the hub's
              fork_child hooks run. */
#ifndef GREEN_PROC_H_INCLUDED
#define GREEN_PROC_H_INCLUDED

#include <signal.h>

#include "core/hub.h"

enum green__fork_phase {
    GREEN__FORK_PREPARE,
    GREEN__FORK_PARENT,
    GREEN__FORK_CHILD
};

void green__thread_atfork(struct green__hub *hub, int phase);
void green__threadpool_atfork(struct green__hub *hub, int phase);
void green__signal_atfork(int phase);

/* Block every asynchronous signal in the calling thread and return the
   previous mask in old (threads created meanwhile inherit the full
   mask: libgreen's worker threads never run signal handlers). */
void green__block_signals(sigset_t *old);

#endif
