/* The threadpool: per-hub worker pthreads that run blocking functions
   while the calling greenlet waits cooperatively (gevent's ThreadPool),
   and green_getaddrinfo on top of it.

   Shape: a caller queues a job under pool->mu and parks.  Workers
   (created lazily, at most pool->size, default 10 like gevent's) take
   jobs in FIFO order, run fn, move the job to pool->done and
   ev_async_send the hub.  The async callback runs in the hub thread,
   takes the finished jobs and wakes their callers.  Fields marked "hub
   thread" are only touched by the hub's own thread; the lists, counters
   and job states only under pool->mu.

   Keeping the loop alive: the async watcher is ev_unref'd while no job is
   outstanding, so an idle pool never keeps green_run (or an embedding
   application's ev_run) from returning, and it is referenced while any
   job is, so the hub blocks in the poll for the result instead of
   reporting EDEADLK, and the job of a killed caller is still collected
   and freed before the loop may exit.

   Kill and timeout: the caller returns at once with ECANCELED (or
   ETIMEDOUT for an expired green_timeout).  A job no worker has taken
   yet is withdrawn and never runs; a running one is orphaned: the hub
   frees it (and, through the job's orphan hook, what it produced) when
   it finishes.

   Workers never own a hub and never run signal handlers (all
   asynchronous signals are blocked in them).  green_fork: the child has
   no workers; it fails the calls whose job was running (ECANCELED: the
   job runs on in the parent), keeps the queued jobs and starts new
   workers for them, and creates further workers lazily as usual. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"
#include "io/net.h"
#include "proc.h"
#include "sync/sync.h"

#define POOL_DEFAULT_SIZE 10
#define POOL_MAX_SIZE 1024

enum job_state {
    JOB_QUEUED,   /* in pool->queue: no worker has it yet */
    JOB_RUNNING,  /* in pool->running: a worker runs fn */
    JOB_FINISHED, /* in pool->done: fn returned */
    JOB_LOST      /* in pool->done: its worker did not survive green_fork */
};

struct job {
    struct green__list node;    /* in queue, running or done (under mu) */
    struct green__list all;     /* in pool->jobs until freed (hub thread) */
    int state;                  /* enum job_state (under mu) */
    green_fn fn;                /* what the worker runs, and its argument */
    void *arg;
    void *result;               /* fn's return value once FINISHED */
    /* Frees arg, and what fn produced if `finished`, once the caller is
       gone; NULL when there is nothing to free.  Hub thread. */
    void (*orphan)(void *arg, int finished);
    struct green__clause *clause; /* the caller's wait; NULL once orphaned */
    /* green_threadpool_async: completed when collected (NULL: none, or
       freed by its owner meanwhile), and the owner's done hook. */
    int async;
    green_result_t *res;
    void (*done)(void *arg, void *value, int ran);
};

struct tpool;

struct worker {
    struct green__list node;    /* in pool->workers, then pool->exited */
    pthread_t tid;
    struct tpool *pool;
};

/* The threadpool of one hub ("tpool": not a green_pool of greenlets). */
struct tpool {
    struct green__hub *hub;     /* owner; its loop receives the async */
    pthread_mutex_t mu;         /* guards the lists and counters below */
    pthread_cond_t cv;          /* workers wait here for jobs */
    struct green__list queue;   /* JOB_QUEUED jobs, FIFO */
    struct green__list running; /* JOB_RUNNING jobs */
    struct green__list done;    /* FINISHED or LOST, not yet collected */
    struct green__list workers; /* live worker threads */
    struct green__list exited;  /* workers gone after a shrink: to join */
    size_t queued;              /* length of queue */
    size_t size;                /* maximum number of workers */
    size_t nworkers;            /* length of workers */
    size_t idle;                /* workers not running a job */
    int stopping;               /* shutdown: every worker exits */
    int abandoned;              /* the process exits without waiting for
                                   running jobs: touch no hub any more */
    /* Hub thread only: */
    ev_async async;             /* workers -> hub: a job finished */
    struct green__list jobs;    /* every job not yet freed */
    size_t outstanding;         /* jobs submitted and not collected */
    int referenced;             /* the async counts toward the loop's refs */
};

void green__block_signals(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    /* Faults the thread raises itself must still reach their handlers
       (libgreen's overflow report, a debugger); blocking them would only
       turn them into an immediate kill. */
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGTRAP);
    pthread_sigmask(SIG_SETMASK, &all, old);
}

/******************************************************************************/
/*  Workers                                                                   */
/******************************************************************************/

static void *worker_main(void *p)
{
    struct worker *w = p;
    struct tpool *pool = w->pool;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        /* Leave on shutdown, or when set_size shrank the pool. */
        if (pool->stopping || pool->nworkers > pool->size)
            break;
        struct green__list *n = green__list_pop(&pool->queue);
        if (!n) {
            pthread_cond_wait(&pool->cv, &pool->mu);
            continue;
        }
        struct job *j = green__container_of(n, struct job, node);
        pool->queued--;
        pool->idle--;
        j->state = JOB_RUNNING;
        green__list_push(&pool->running, &j->node);
        pthread_mutex_unlock(&pool->mu);

        void *result = j->fn(j->arg);

        pthread_mutex_lock(&pool->mu);
        j->result = result;
        j->state = JOB_FINISHED;
        green__list_remove(&j->node);
        green__list_push(&pool->done, &j->node);
        pool->idle++;
        /* Thread-safe; the hub's term joins every worker before it stops
           this watcher (or abandons the pool at exit), so the loop is
           alive here unless abandoned. */
        if (!pool->abandoned)
            ev_async_send(pool->hub->loop, &pool->async);
    }
    pool->idle--;
    pool->nworkers--;
    green__list_remove(&w->node);
    green__list_push(&pool->exited, &w->node);
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

/* Start one worker.  Under pool->mu; 0 or an errno value. */
static int spawn_worker(struct tpool *pool)
{
    struct worker *w = malloc(sizeof *w);
    if (!w)
        return ENOMEM;
    w->pool = pool;
    /* The new thread inherits the mask: it never runs signal handlers, so
       signals go to threads that run hubs. */
    sigset_t old;
    green__block_signals(&old);
    int err = pthread_create(&w->tid, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        free(w);
        return err;
    }
    pool->nworkers++;
    pool->idle++; /* it takes a job as soon as it gets the mutex */
    green__list_push(&pool->workers, &w->node);
    return 0;
}

/* Start workers while queued jobs outnumber the workers free to take
   them.  Under pool->mu; returns the last creation error, or 0. */
static int grow(struct tpool *pool)
{
    int err = 0;
    while (pool->queued > pool->idle && pool->nworkers < pool->size) {
        err = spawn_worker(pool);
        if (err)
            break;
    }
    return err;
}

/* Join the workers that left after a shrink.  Hub thread. */
static void reap_exited(struct tpool *pool)
{
    struct green__list gone;
    green__list_init(&gone);
    pthread_mutex_lock(&pool->mu);
    struct green__list *n;
    while ((n = green__list_pop(&pool->exited)) != NULL)
        green__list_push(&gone, n);
    pthread_mutex_unlock(&pool->mu);
    while ((n = green__list_pop(&gone)) != NULL) {
        struct worker *w = green__container_of(n, struct worker, node);
        pthread_join(w->tid, NULL); /* it already unlocked and returns */
        free(w);
    }
}

/******************************************************************************/
/*  The hub side                                                              */
/******************************************************************************/

static void job_free(struct job *j)
{
    green__list_remove(&j->all);
    if (j->orphan)
        j->orphan(j->arg, j->state == JOB_FINISHED);
    if (j->async) {
        int ran = j->state == JOB_FINISHED;
        if (j->res)
            green__result_on_free(j->res, NULL, NULL);
        if (j->done)
            j->done(j->arg, ran ? j->result : NULL, ran);
    }
    free(j);
}

/* An async job's result is complete: fn's value, or ECANCELED for a job
   lost in green_fork; then the done hook, and the job is gone. */
static void async_finish(struct job *j)
{
    green_result_t *r = j->res;
    if (r) {
        j->res = NULL;
        green__result_on_free(r, NULL, NULL);
        if (j->state == JOB_FINISHED)
            green_result_set(r, j->result);
        else
            green_result_set_error(r, ECANCELED);
    }
    job_free(j);
}

/* Reference the async watcher exactly while jobs are outstanding. */
static void update_ref(struct tpool *pool)
{
    struct ev_loop *loop = pool->hub->loop;
    if (pool->outstanding > 0 && !pool->referenced) {
        ev_ref(loop);
        pool->referenced = 1;
    } else if (pool->outstanding == 0 && pool->referenced) {
        ev_unref(loop);
        pool->referenced = 0;
    }
}

/* Hand every finished job to its caller (or free it if the caller is
   gone).  Hub thread: the async callback, or green_fork's child. */
static void collect(struct tpool *pool)
{
    struct green__list ready;
    green__list_init(&ready);
    pthread_mutex_lock(&pool->mu);
    struct green__list *n;
    while ((n = green__list_pop(&pool->done)) != NULL)
        green__list_push(&ready, n);
    pthread_mutex_unlock(&pool->mu);
    while ((n = green__list_pop(&ready)) != NULL) {
        struct job *j = green__container_of(n, struct job, node);
        pool->outstanding--;
        if (j->async)
            async_finish(j);
        else if (!j->clause)
            job_free(j);
        else
            /* If the caller's wait already ended (killed, timed out) but
               it has not resumed, it finds its clause fired and frees the
               job itself. */
            green__clause_fire(j->clause,
                               j->state == JOB_LOST ? ECANCELED : 0);
    }
    update_ref(pool);
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    collect(w->data);
}

static void tpool_term(struct green__hub *hub, void *state);
static void tpool_fork(struct green__hub *hub, void *state, int phase);
static size_t tpool_watchers(struct green__hub *hub, void *state)
{
    (void)hub;
    return ((struct tpool *)state)->outstanding > 0;
}
static struct green__module tpool_module = {
    .name = "threadpool", .term = tpool_term, .fork = tpool_fork,
    .watchers = tpool_watchers};

/* This hub's pool, created on first use (no thread yet); NULL/ENOMEM. */
static struct tpool *tpool_get(struct green__hub *hub)
{
    struct tpool *pool = green__module_state(hub, &tpool_module);
    if (GREEN_LIKELY(pool != NULL))
        return pool;
    pool = green__module_new(hub, &tpool_module, sizeof *pool);
    if (!pool)
        return NULL;
    int err = pthread_mutex_init(&pool->mu, NULL);
    if (!err && (err = pthread_cond_init(&pool->cv, NULL)) != 0)
        pthread_mutex_destroy(&pool->mu);
    if (err) {
        green__module_detach(hub, &tpool_module); /* not left dangling */
        free(pool);
        errno = ENOMEM;
        return NULL;
    }
    pool->hub = hub;
    pool->size = POOL_DEFAULT_SIZE;
    green__list_init(&pool->queue);
    green__list_init(&pool->running);
    green__list_init(&pool->done);
    green__list_init(&pool->workers);
    green__list_init(&pool->exited);
    green__list_init(&pool->jobs);
    ev_async_init(&pool->async, async_cb);
    pool->async.data = pool;
    ev_async_start(hub->loop, &pool->async);
    ev_unref(hub->loop); /* an idle pool does not keep the loop alive */
    return pool;
}

/* Shutdown: join every worker (waiting for the jobs they run), then free
   every job: their callers are being discarded with the hub. */
static void tpool_term(struct green__hub *hub, void *state)
{
    struct tpool *pool = state;
    pthread_mutex_lock(&pool->mu);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->cv);
    if (hub->exiting && !green__list_empty(&pool->running)) {
        /* exit() must not wait for a job whose caller gave up (its result
           is dropped, as documented).  Its worker finds the pool
           abandoned and leaves without touching the hub; the pool stays
           allocated for it until the process is gone. */
        pool->abandoned = 1;
        pthread_mutex_unlock(&pool->mu);
        return;
    }
    for (;;) {
        struct green__list *n = !green__list_empty(&pool->exited)
                                    ? pool->exited.next
                                : !green__list_empty(&pool->workers)
                                    ? pool->workers.next
                                    : NULL;
        if (!n)
            break;
        struct worker *w = green__container_of(n, struct worker, node);
        pthread_mutex_unlock(&pool->mu);
        pthread_join(w->tid, NULL);
        pthread_mutex_lock(&pool->mu);
        green__list_remove(&w->node); /* it moved itself to exited */
        free(w);
    }
    pthread_mutex_unlock(&pool->mu);
    /* Single-threaded from here on. */
    while (!green__list_empty(&pool->jobs))
        job_free(green__container_of(pool->jobs.next, struct job, all));
    if (!pool->referenced)
        ev_ref(hub->loop);
    ev_async_stop(hub->loop, &pool->async);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}

static void tpool_fork_child(struct tpool *pool);

static void tpool_fork(struct green__hub *hub, void *state, int phase)
{
    (void)hub;
    struct tpool *pool = state;
    if (!pool)
        return;
    switch (phase) {
    case GREEN__FORK_PREPARE:
        pthread_mutex_lock(&pool->mu);
        break;
    case GREEN__FORK_PARENT:
        pthread_mutex_unlock(&pool->mu);
        break;
    default:
        /* The child's only thread held the lock; workers and their
           condition-variable waits did not survive. */
        pthread_mutex_init(&pool->mu, NULL);
        pthread_cond_init(&pool->cv, NULL);
        tpool_fork_child(pool);
        break;
    }
}

/* In green_fork's child (the forking greenlet's context): forget the
   parent's workers, fail the calls whose job was running, and start
   workers for the jobs still queued. */
static void tpool_fork_child(struct tpool *pool)
{
    struct green__list *n;
    while ((n = green__list_pop(&pool->workers)) != NULL)
        free(green__container_of(n, struct worker, node));
    while ((n = green__list_pop(&pool->exited)) != NULL)
        free(green__container_of(n, struct worker, node));
    pool->nworkers = 0;
    pool->idle = 0;
    while ((n = green__list_pop(&pool->running)) != NULL) {
        struct job *j = green__container_of(n, struct job, node);
        j->state = JOB_LOST;
        green__list_push(&pool->done, n);
    }
    collect(pool);
    pthread_mutex_lock(&pool->mu);
    grow(pool);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
}

/* Queue j for a worker.  0, or EAGAIN/ENOMEM (j is freed) when no
   worker exists or can be created to take it. */
static int submit(struct tpool *pool, struct job *j)
{
    pthread_mutex_lock(&pool->mu);
    green__list_push(&pool->queue, &j->node);
    pool->queued++;
    int err = grow(pool);
    if (pool->nworkers == 0) {
        /* No thread could be created and none exists to take it. */
        green__list_remove(&j->node);
        pool->queued--;
        pthread_mutex_unlock(&pool->mu);
        job_free(j);
        return err == ENOMEM ? ENOMEM : EAGAIN;
    }
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    pool->outstanding++;
    update_ref(pool);
    return 0;
}

/* The caller's wait ended without the job (a kill, a timeout, shutdown):
   withdraw it if no worker took it (fn never runs), else orphan it
   (collect() frees it when the worker is done). */
static void job_undo(struct green__clause *c)
{
    struct job *j = c->data;
    j->clause = NULL;
    if (c->fired)
        return; /* collected: the caller frees it */
    struct tpool *pool = green__module_state(c->g->hub, &tpool_module);
    pthread_mutex_lock(&pool->mu);
    if (j->state == JOB_QUEUED) {
        green__list_remove(&j->node);
        pool->queued--;
        pthread_mutex_unlock(&pool->mu);
        pool->outstanding--;
        update_ref(pool);
        job_free(j);
        return;
    }
    pthread_mutex_unlock(&pool->mu);
}

/* proc.h */
int green__threadpool_run(green_fn fn, void *arg, void **result,
                          void (*orphan)(void *arg, int finished))
{
    struct green__wait w;
    struct tpool *pool = NULL;
    struct job *j = NULL;
    int err = green__wait_begin(&w, -1, "in the threadpool", 0);
    if (!err && !(pool = tpool_get(w.g->hub)))
        err = ENOMEM;
    if (!err && !(j = calloc(1, sizeof *j)))
        err = ENOMEM;
    if (err) {
        if (orphan)
            orphan(arg, 0);
        return err;
    }
    reap_exited(pool);
    j->fn = fn;
    j->arg = arg;
    j->orphan = orphan;
    j->state = JOB_QUEUED;
    green__list_push(&pool->jobs, &j->all);
    err = submit(pool, j);
    if (err)
        return err;
    struct green__clause c;
    green__wait_add(&w, &c, job_undo, j);
    j->clause = &c;
    err = green__wait_park(&w);
    if (!c.fired)
        return err; /* killed or timed out: job_undo withdrew or orphaned
                       the job */
    /* collect() handed the job back (finished, or lost in green_fork). */
    if (!err && result)
        *result = j->result;
    if (err) {
        job_free(j);
        return err;
    }
    green__list_remove(&j->all);
    free(j);
    return 0;
}

/******************************************************************************/
/*  Public                                                                    */
/******************************************************************************/

int green_threadpool_call(green_fn fn, void *arg, void **result)
{
    if (!fn)
        return green__fail(EINVAL);
    int err = green__threadpool_run(fn, arg, result, NULL);
    return err ? green__fail(err) : 0;
}

/* green_result_free of an async job's result: complete nothing later. */
static void async_forget(void *ctx)
{
    struct job *j = ctx;
    j->res = NULL;
}

green_result_t *green_threadpool_async(green_fn fn, void *arg,
                                       void (*done)(void *arg, void *value,
                                                    int ran))
{
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    struct tpool *pool = tpool_get(hub);
    struct job *j = pool ? calloc(1, sizeof *j) : NULL;
    green_result_t *r = j ? green_result_new() : NULL;
    if (!r) {
        free(j);
        errno = ENOMEM;
        return NULL;
    }
    reap_exited(pool);
    j->fn = fn;
    j->arg = arg;
    j->async = 1;
    j->res = r;
    j->state = JOB_QUEUED;
    green__result_on_free(r, async_forget, j);
    green__list_push(&pool->jobs, &j->all);
    j->done = NULL; /* a failed submit must not call it: we report */
    int err = submit(pool, j);
    if (err) {
        green_result_free(r);
        errno = err;
        return NULL;
    }
    j->done = done;
    return r;
}

int green_threadpool_set_size(size_t n)
{
    if (n == 0 || n > POOL_MAX_SIZE)
        return green__fail(EINVAL);
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    struct tpool *pool = tpool_get(hub);
    if (!pool)
        return green__fail(ENOMEM);
    pthread_mutex_lock(&pool->mu);
    pool->size = n;
    grow(pool);                        /* more room: serve the backlog */
    pthread_cond_broadcast(&pool->cv); /* less room: idle extras leave */
    pthread_mutex_unlock(&pool->mu);
    reap_exited(pool);
    return 0;
}

/* getaddrinfo in a worker.  The request owns copies of the strings and
   hints: a killed caller returns while the worker still reads them. */
struct gai_req {
    const char *node;           /* NULL or points into buf */
    const char *service;        /* NULL or points into buf */
    struct addrinfo hints;      /* copy, pointers cleared */
    int has_hints;
    int rc;                     /* getaddrinfo's result */
    int err;                    /* the worker's errno, for EAI_SYSTEM */
    struct addrinfo *res;       /* getaddrinfo's list */
    char buf[];                 /* node and service strings */
};

static void *gai_run(void *arg)
{
    struct gai_req *r = arg;
    r->rc = getaddrinfo(r->node, r->service, r->has_hints ? &r->hints : NULL,
                        &r->res);
    r->err = errno;
    return NULL;
}

static void gai_orphan(void *arg, int finished)
{
    struct gai_req *r = arg;
    if (finished && r->rc == 0 && r->res)
        freeaddrinfo(r->res);
    free(r);
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* A numeric address and a numeric (or no) service resolve without any
   lookup that could block, so they skip the thread hop. */
static int numeric_only(const char *node, const char *service)
{
    return node && (!service || all_digits(service)) &&
           green__numeric_host(node);
}

int green_getaddrinfo(const char *node, const char *service,
                      const struct addrinfo *hints, struct addrinfo **res)
{
    if (!res) {
        errno = EINVAL;
        return EAI_SYSTEM;
    }
    int err = green__can_block(-1);
    if (err) {
        errno = err;
        return EAI_SYSTEM;
    }
    if (numeric_only(node, service)) {
        struct addrinfo h = {0};
        if (hints) {
            h.ai_flags = hints->ai_flags;
            h.ai_family = hints->ai_family;
            h.ai_socktype = hints->ai_socktype;
            h.ai_protocol = hints->ai_protocol;
        }
        h.ai_flags |= AI_NUMERICHOST | (service ? AI_NUMERICSERV : 0);
        return getaddrinfo(node, service, &h, res);
    }
    size_t nl = node ? strlen(node) + 1 : 0;
    size_t sl = service ? strlen(service) + 1 : 0;
    struct gai_req *r = calloc(1, sizeof *r + nl + sl);
    if (!r)
        return EAI_MEMORY;
    if (node)
        r->node = memcpy(r->buf, node, nl);
    if (service)
        r->service = memcpy(r->buf + nl, service, sl);
    if (hints) {
        r->has_hints = 1;
        r->hints.ai_flags = hints->ai_flags;
        r->hints.ai_family = hints->ai_family;
        r->hints.ai_socktype = hints->ai_socktype;
        r->hints.ai_protocol = hints->ai_protocol;
    }
    err = green__threadpool_run(gai_run, r, NULL, gai_orphan);
    if (err) {
        /* r belongs to the pool now (freed when the job ends). */
        errno = err;
        return EAI_SYSTEM;
    }
    int rc = r->rc;
    if (rc == 0)
        *res = r->res;
    else if (rc == EAI_SYSTEM)
        errno = r->err;
    free(r);
    return rc;
}
