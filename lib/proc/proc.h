/* Internals shared by the process, signal, threadpool and thread modules.

   green_fork (process.c) holds every process-wide and per-hub lock these
   modules own across fork(2), the way pthread_atfork handlers would, so
   the child inherits each structure in a consistent state.  Each module
   registers a fork hook in the hub's module table (core/hub.h), which
   green_fork runs through green__modules_fork:
     PREPARE  in the parent before fork: take the locks (newest module
              first; every module takes its own locks only, in a fixed
              order inside the module, so the order cannot deadlock);
     PARENT   in the parent after fork: release them;
     CHILD    in the child after fork: re-initialise them (the child has
              one thread, so nobody else can hold them). */
#ifndef GREEN_PROC_H_INCLUDED
#define GREEN_PROC_H_INCLUDED

#include <signal.h>
#include <sys/types.h>

#include "core/hub.h"

/* Block every asynchronous signal in the calling thread and return the
   previous mask in old (threads created meanwhile inherit the full
   mask: libgreen's worker threads never run signal handlers). */
void green__block_signals(sigset_t *old);

/* pidfd_open(pid, 0) (Linux 5.3; close-on-exec): the fd, or -1 with
   errno (ENOSYS, EPERM in some sandboxes, ESRCH). */
int green__pidfd_open(pid_t pid);

/* Run fn(arg) in this hub's threadpool while the current greenlet waits
   (threadpool.c); 0 with *result set (if result is not NULL), or an
   errno value (the contract of green_threadpool_call).  When it fails
   and orphan is not NULL, arg belongs to the pool: orphan(arg, finished)
   frees it, now or once the job finishes (a killed caller's job runs
   on). */
int green__threadpool_run(green_fn fn, void *arg, void **result,
                          void (*orphan)(void *arg, int finished));

#endif
