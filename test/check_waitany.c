/* green_wait_any, green_iwait, green_joinall_count, green_run_timeout:
   readiness in firing order, nothing consumed (an item, a unit, a result
   stays for the call that takes it), kills and timeouts while the
   objects fire, and every error. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "synctest.h"

#define W_EV(e) ((green_waitable_t){GREEN_WAIT_EVENT, (e), -1})
#define W_OBJ(k, o) ((green_waitable_t){(k), (o), -1})
#define W_FD(k, fd) ((green_waitable_t){(k), NULL, (fd)})

/* Sets the events of a NULL-terminated array 10 ms apart. */
static void *set_events(void *arg)
{
    green_event_t **es = arg;
    for (; *es; es++) {
        green_sleep(0.01);
        green_event_set(*es);
    }
    return NULL;
}

/* A greenlet parked in green_wait_any. */
struct waiter {
    green_waitable_t *objs;
    size_t n, count;
    double timeout;
    size_t ready[8];
    int rc, err;
};

static void *wait_any_g(void *arg)
{
    struct waiter *w = arg;
    errno = 0;
    w->rc = green_wait_any(w->objs, w->n, w->count, w->timeout, w->ready);
    w->err = errno;
    return NULL;
}

START_TEST(wait_any_reports_in_firing_order)
{
    green_event_t *e[3] = {green_event_new(), green_event_new(),
                           green_event_new()};
    green_waitable_t objs[3] = {W_EV(e[0]), W_EV(e[1]), W_EV(e[2])};
    green_event_t *order[] = {e[2], e[0], NULL};
    green_t *g = green_spawn(set_events, order);
    size_t ready[3];
    double t0 = test_now();
    ck_assert_int_eq(green_wait_any(objs, 3, 2, 5, ready), 2);
    ck_assert_uint_eq(ready[0], 2);
    ck_assert_uint_eq(ready[1], 0);
    ck_assert(test_now() - t0 < 0.5 + test_slack());
    /* Already ready: reported in array order, at once. */
    ck_assert_int_eq(green_wait_any(objs, 3, 0, 0, ready), 2);
    ck_assert_uint_eq(ready[0], 0);
    ck_assert_uint_eq(ready[1], 2);
    ck_assert_int_eq(green_join(g, 5), 0);
    green_release(g);
    for (int i = 0; i < 3; i++)
        green_event_free(e[i]);
}
END_TEST

START_TEST(wait_any_times_out_with_what_is_ready)
{
    green_event_t *e[2] = {green_event_new(), green_event_new()};
    green_event_set(e[1]);
    green_waitable_t objs[3] = {W_EV(e[0]), W_OBJ(GREEN_WAIT_NONE, NULL),
                                W_EV(e[1])};
    size_t ready[3];
    double t0 = test_now();
    ck_assert_int_eq(green_wait_any(objs, 3, 0, 0.05, ready), 1);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    ck_assert_uint_eq(ready[0], 2);
    /* Timeout 0 only checks, also in the hub. */
    ck_assert_int_eq(green_wait_any(objs, 1, 1, 0, ready), 0);
    green_event_free(e[0]);
    green_event_free(e[1]);
}
END_TEST

static void *put_one(void *q)
{
    green_queue_put(q, P(7), -1);
    return NULL;
}

START_TEST(wait_any_never_takes_a_queue_item)
{
    green_queue_t *q = green_queue_new(0);
    green_waitable_t objs[1] = {W_OBJ(GREEN_WAIT_QUEUE_GET, q)};
    green_t *g = green_spawn(put_one, q);
    size_t ready[1];
    ck_assert_int_eq(green_wait_any(objs, 1, 1, 5, ready), 1);
    ck_assert_uint_eq(green_queue_size(q), 1);
    void *v;
    ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
    ck_assert_int_eq(I(v), 7);
    green_join(g, 5);
    green_release(g);
    green_queue_free(q);
}
END_TEST

static void *get_one(void *arg)
{
    struct { green_queue_t *q; void *v; int rc; } *o = arg;
    o->rc = green_queue_get(o->q, &o->v, 5);
    return NULL;
}

START_TEST(wait_any_put_still_goes_to_a_real_getter)
{
    green_queue_t *q = green_queue_new(0);
    struct { green_queue_t *q; void *v; int rc; } o = {q, NULL, -1};
    green_waitable_t objs[1] = {W_OBJ(GREEN_WAIT_QUEUE_GET, q)};
    struct waiter w = {objs, 1, 1, 0.1, {0}, 0, 0};
    /* The watcher parks first, then the getter: the item goes to the
       getter, and the watcher sees an empty queue (times out). */
    green_t *gw = green_spawn(wait_any_g, &w);
    green_t *gg = green_spawn(get_one, &o);
    green_yield();
    ck_assert_int_eq(green_queue_put(q, P(3), 0), 0);
    ck_assert_int_eq(green_join(gg, 5), 0);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_int_eq(I(o.v), 3);
    ck_assert_int_eq(green_join(gw, 5), 0);
    ck_assert_int_eq(w.rc, 0);
    ck_assert_uint_eq(green_queue_size(q), 0);
    green_release(gw);
    green_release(gg);
    green_queue_free(q);
}
END_TEST

/* Puts an item and takes it back before the watcher runs again. */
static void *put_and_take(void *q)
{
    void *v;
    green_queue_put(q, P(1), 0);
    green_queue_get(q, &v, 0);
    return NULL;
}

START_TEST(wait_any_rechecks_a_queue_emptied_before_it_resumed)
{
    green_queue_t *q = green_queue_new(0);
    green_waitable_t objs[1] = {W_OBJ(GREEN_WAIT_QUEUE_GET, q)};
    green_t *g = green_spawn_later(0.01, put_and_take, q);
    size_t ready[1];
    ck_assert_int_eq(green_wait_any(objs, 1, 1, 0.1, ready), 0);
    green_join(g, 5);
    green_release(g);
    green_queue_free(q);
}
END_TEST

static void *get_after(void *q)
{
    void *v;
    green_sleep(0.01);
    green_queue_get(q, &v, 0);
    return NULL;
}

START_TEST(wait_any_sees_room_in_a_full_queue_and_channels)
{
    green_queue_t *q = green_queue_new(1);
    ck_assert_int_eq(green_queue_put(q, P(1), 0), 0);
    green_waitable_t put[1] = {W_OBJ(GREEN_WAIT_QUEUE_PUT, q)};
    size_t ready[1];
    ck_assert_int_eq(green_wait_any(put, 1, 1, 0, ready), 0);
    green_t *g = green_spawn(get_after, q);
    ck_assert_int_eq(green_wait_any(put, 1, 1, 5, ready), 1);
    ck_assert_int_eq(green_queue_put(q, P(2), 0), 0);
    green_join(g, 5);
    green_release(g);
    green_queue_free(q);

    /* A channel: get is ready while a putter waits, put while a getter
       waits. */
    green_queue_t *ch = green_channel_new();
    green_waitable_t get[1] = {W_OBJ(GREEN_WAIT_QUEUE_GET, ch)};
    g = green_spawn(put_one, ch);
    ck_assert_int_eq(green_wait_any(get, 1, 1, 5, ready), 1);
    void *v;
    ck_assert_int_eq(green_queue_get(ch, &v, 0), 0);
    ck_assert_int_eq(I(v), 7);
    green_join(g, 5);
    green_release(g);
    struct { green_queue_t *q; void *v; int rc; } o = {ch, NULL, -1};
    put[0].obj = ch;
    g = green_spawn(get_one, &o);
    ck_assert_int_eq(green_wait_any(put, 1, 1, 5, ready), 1);
    ck_assert_int_eq(green_queue_put(ch, P(9), 0), 0);
    green_join(g, 5);
    ck_assert_int_eq(I(o.v), 9);
    green_release(g);
    green_queue_free(ch);
}
END_TEST

static void *close_after(void *q)
{
    green_sleep(0.01);
    green_queue_close(q);
    return NULL;
}

START_TEST(wait_any_reports_a_closed_queue)
{
    green_queue_t *q = green_queue_new(0);
    green_waitable_t objs[1] = {W_OBJ(GREEN_WAIT_QUEUE_GET, q)};
    green_t *g = green_spawn(close_after, q);
    size_t ready[1];
    ck_assert_int_eq(green_wait_any(objs, 1, 1, 5, ready), 1);
    void *v;
    GREEN_ASSERT_ERRNO(green_queue_get(q, &v, 0), EPIPE);
    green_join(g, 5);
    green_release(g);
    green_queue_free(q);
}
END_TEST

static void *release_after(void *s)
{
    green_sleep(0.01);
    green_sem_release(s);
    return NULL;
}

START_TEST(wait_any_never_takes_a_semaphore_unit)
{
    green_sem_t *s = green_sem_new(0, 0);
    green_waitable_t objs[1] = {W_OBJ(GREEN_WAIT_SEM, s)};
    green_t *g = green_spawn(release_after, s);
    size_t ready[1];
    ck_assert_int_eq(green_wait_any(objs, 1, 1, 5, ready), 1);
    ck_assert_int_eq(green_sem_acquire(s, 0), 0);
    GREEN_ASSERT_ERRNO(green_sem_acquire(s, 0), EAGAIN);
    green_join(g, 5);
    green_release(g);
    green_sem_free(s);
}
END_TEST

static void *set_result_after(void *r)
{
    green_sleep(0.01);
    green_result_set(r, P(42));
    return NULL;
}

static void *sleep_arg(void *secs)
{
    green_sleep(*(double *)secs);
    return NULL;
}

START_TEST(wait_any_mixes_results_greenlets_and_fds)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    green_result_t *r = green_result_new();
    double long_sleep = 10, short_sleep = 0.03;
    green_t *slow = green_spawn(sleep_arg, &long_sleep);
    green_t *quick = green_spawn(sleep_arg, &short_sleep);
    green_t *setter = green_spawn(set_result_after, r);
    green_waitable_t objs[5] = {
        W_FD(GREEN_WAIT_READ, p[0]), W_OBJ(GREEN_WAIT_RESULT, r),
        W_OBJ(GREEN_WAIT_GREENLET, slow), W_OBJ(GREEN_WAIT_GREENLET, quick),
        W_FD(GREEN_WAIT_WRITE, p[1])};
    size_t ready[5];
    /* The pipe is writable at once; the result 10 ms later, then quick. */
    ck_assert_int_eq(green_wait_any(objs, 5, 3, 5, ready), 3);
    ck_assert_uint_eq(ready[0], 4);
    ck_assert_uint_eq(ready[1], 1);
    ck_assert_uint_eq(ready[2], 3);
    void *v;
    ck_assert_int_eq(green_result_get(r, 0, &v), 0);
    ck_assert_int_eq(I(v), 42);
    /* The read end: ready once a byte arrives, and the byte stays. */
    ck_assert_int_eq(green_wait_any(objs, 1, 1, 0.02, ready), 0);
    ck_assert_int_eq(green_write(p[1], "x", 1), 1);
    ck_assert_int_eq(green_wait_any(objs, 1, 1, 5, ready), 1);
    char c;
    ck_assert_int_eq(green_read(p[0], &c, 1), 1);
    green_kill(slow, 5);
    green_join(quick, 5);
    green_join(setter, 5);
    green_release(slow);
    green_release(quick);
    green_release(setter);
    green_result_free(r);
    green_close(p[0]);
    green_close(p[1]);
}
END_TEST

START_TEST(wait_any_killed_or_timed_out_waiter_leaves_the_objects)
{
    green_queue_t *q = green_queue_new(0);
    green_sem_t *s = green_sem_new(0, 0);
    green_event_t *e = green_event_new();
    green_waitable_t objs[3] = {W_OBJ(GREEN_WAIT_QUEUE_GET, q),
                                W_OBJ(GREEN_WAIT_SEM, s), W_EV(e)};
    struct waiter killed = {objs, 3, 1, -1, {0}, 0, 0};
    struct waiter timed = {objs, 3, 1, 0.02, {0}, 0, 0};
    green_t *gk = green_spawn(wait_any_g, &killed);
    green_t *gt = green_spawn(wait_any_g, &timed);
    green_yield();
    ck_assert_int_eq(green_kill(gk, 5), 0);
    ck_assert_int_eq(killed.rc, -1);
    ck_assert_int_eq(killed.err, ECANCELED);
    ck_assert_int_eq(green_join(gt, 5), 0);
    ck_assert_int_eq(timed.rc, 0);
    /* Their clauses are gone: the objects fire into nothing, keep their
       tokens, and can be freed. */
    ck_assert_int_eq(green_queue_put(q, P(1), 0), 0);
    ck_assert_int_eq(green_sem_release(s), 0);
    ck_assert_int_eq(green_event_set(e), 0);
    ck_assert_uint_eq(green_queue_size(q), 1);
    ck_assert_int_eq(green_sem_acquire(s, 0), 0);
    /* A kill arriving in the same round as the fire. */
    killed.rc = 0;
    green_event_clear(e);
    green_t *gk2 = green_spawn(wait_any_g, &killed);
    green_yield();
    green_event_set(e);
    ck_assert_int_eq(green_kill(gk2, 5), 0);
    ck_assert(killed.rc == 1 || (killed.rc == -1 && killed.err == ECANCELED));
    green_release(gk);
    green_release(gk2);
    green_release(gt);
    green_queue_free(q);
    green_sem_free(s);
    green_event_free(e);
}
END_TEST

static void *free_event_after(void *e)
{
    green_sleep(0.01);
    green_event_free(e);
    return NULL;
}

START_TEST(wait_any_object_freed_meanwhile_is_ebadf)
{
    green_event_t *e = green_event_new();
    green_waitable_t objs[1] = {W_EV(e)};
    green_t *g = green_spawn(free_event_after, e);
    size_t ready[1];
    GREEN_ASSERT_ERRNO(green_wait_any(objs, 1, 1, 5, ready), EBADF);
    green_join(g, 5);
    green_release(g);
}
END_TEST

static void hub_wait(void *arg)
{
    green_waitable_t *objs = arg;
    size_t ready[1];
    GREEN_ASSERT_ERRNO(green_wait_any(objs, 1, 1, -1, ready), EDEADLK);
    ck_assert_int_eq(green_wait_any(objs, 1, 1, 0, ready), 0);
}

static void *other_thread(void *arg)
{
    size_t ready[1];
    THREAD_EXPECT_ERRNO(green_wait_any(arg, 1, 1, 0, ready), EXDEV);
    THREAD_EXPECT_ERRNO(green_iwait_new(arg, 1, 0), EXDEV);
    green_shutdown();
    return NULL;
}

START_TEST(wait_any_bad_arguments_and_contexts)
{
    green_event_t *e = green_event_new();
    size_t ready[2];
    green_waitable_t bad_kind[1] = {W_OBJ(99, e)};
    green_waitable_t null_obj[1] = {W_OBJ(GREEN_WAIT_EVENT, NULL)};
    green_waitable_t neg_fd[1] = {W_FD(GREEN_WAIT_READ, -1)};
    green_waitable_t ok[1] = {W_EV(e)};
    GREEN_ASSERT_ERRNO(green_wait_any(NULL, 1, 1, 0, ready), EINVAL);
    GREEN_ASSERT_ERRNO(green_wait_any(ok, 1, 1, 0, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_wait_any(bad_kind, 1, 1, 0, ready), EINVAL);
    GREEN_ASSERT_ERRNO(green_wait_any(null_obj, 1, 1, 0, ready), EINVAL);
    GREEN_ASSERT_ERRNO(green_wait_any(neg_fd, 1, 1, 0, ready), EINVAL);
    GREEN_ASSERT_ERRNO(green_wait_any(ok, 1, 1, NAN, ready), EINVAL);
    GREEN_ASSERT_ERRNO(green_iwait_new(bad_kind, 1, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_iwait_next(NULL, ready), EINVAL);
    ck_assert_int_eq(green_wait_any(NULL, 0, 0, 0, NULL), 0);
    run_in_hub(hub_wait, ok);
    run_in_thread(other_thread, ok);
    /* Killed before the call: it fails unless something is ready. */
    green_t *self = green_current();
    (void)self;
    green_event_free(e);
}
END_TEST

START_TEST(iwait_yields_each_object_once_in_order)
{
    green_event_t *e[3] = {green_event_new(), green_event_new(),
                           green_event_new()};
    green_waitable_t objs[3] = {W_EV(e[0]), W_EV(e[1]), W_EV(e[2])};
    green_event_t *order[] = {e[1], e[2], e[0], NULL};
    green_t *g = green_spawn(set_events, order);
    green_iwait_t *it = green_iwait_new(objs, 3, 5);
    ck_assert_ptr_nonnull(it);
    size_t i;
    ck_assert_int_eq(green_iwait_next(it, &i), 0);
    ck_assert_uint_eq(i, 1);
    ck_assert_int_eq(green_iwait_next(it, &i), 0);
    ck_assert_uint_eq(i, 2);
    ck_assert_int_eq(green_iwait_next(it, &i), 0);
    ck_assert_uint_eq(i, 0);
    GREEN_ASSERT_ERRNO(green_iwait_next(it, &i), ENOENT);
    GREEN_ASSERT_ERRNO(green_iwait_next(it, NULL), EINVAL);
    green_iwait_free(it);
    green_join(g, 5);
    green_release(g);

    /* The timeout covers the whole iteration. */
    green_event_clear(e[0]);
    it = green_iwait_new(objs, 1, 0.03);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_iwait_next(it, &i), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    green_iwait_free(it);
    it = green_iwait_new(objs, 1, 0);
    GREEN_ASSERT_ERRNO(green_iwait_next(it, &i), EAGAIN);
    green_iwait_free(it);
    green_iwait_free(NULL);
    for (int k = 0; k < 3; k++)
        green_event_free(e[k]);
}
END_TEST

START_TEST(joinall_count_returns_after_the_first_k)
{
    double d[3] = {0.01, 0.02, 10};
    green_t *gs[4] = {green_spawn(sleep_arg, &d[2]), NULL,
                      green_spawn(sleep_arg, &d[0]),
                      green_spawn(sleep_arg, &d[1])};
    double t0 = test_now();
    ck_assert_int_eq(green_joinall_count(gs, 4, 1, 5), 1);
    ck_assert_int_eq(green_joinall_count(gs, 4, 2, 5), 2);
    ck_assert(test_now() - t0 < 0.5 + test_slack());
    GREEN_ASSERT_ERRNO(green_joinall_count(gs, 4, 3, 0.02), ETIMEDOUT);
    GREEN_ASSERT_ERRNO(green_joinall_count(gs, 4, 3, 0), EAGAIN);
    GREEN_ASSERT_ERRNO(green_joinall_count(NULL, 1, 1, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_joinall_count(gs, 4, 1, NAN), EINVAL);
    ck_assert_int_eq(green_kill(gs[0], 5), 0);
    ck_assert_int_eq(green_joinall_count(gs, 4, 0, 5), 3);
    for (int i = 0; i < 4; i++)
        green_release(gs[i]);
}
END_TEST

START_TEST(joinall_count_many_greenlets)
{
    /* More than fit in the on-stack clauses: the last one finishing
       first still ends the wait. */
    enum { N = 40 };
    green_t *gs[N];
    double longs = 10, quick = 0.01;
    for (int i = 0; i < N; i++)
        gs[i] = green_spawn(sleep_arg, i == N - 1 ? &quick : &longs);
    ck_assert_int_eq(green_joinall_count(gs, N, 1, 5), 1);
    ck_assert(green_done(gs[N - 1]));
    ck_assert_int_eq(green_killall(gs, N, 5), 0);
    for (int i = 0; i < N; i++)
        green_release(gs[i]);
}
END_TEST

START_TEST(run_timeout_returns_while_greenlets_live)
{
    double longs = 10;
    green_t *g = green_spawn(sleep_arg, &longs);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_run_timeout(0.03), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    GREEN_ASSERT_ERRNO(green_run_timeout(0), EAGAIN);
    GREEN_ASSERT_ERRNO(green_run_timeout(NAN), EINVAL);
    ck_assert_int_eq(green_kill(g, 0), 0);
    ck_assert_int_eq(green_run_timeout(5), 0);
    ck_assert(green_done(g));
    ck_assert_int_eq(green_run_timeout(0), 0);
    green_release(g);
}
END_TEST

struct ctx_errs {
    int run_rc, run_err, join_rc, join_err;
};

static void *wrong_context(void *arg)
{
    struct ctx_errs *c = arg;
    green_t *self = green_current();
    errno = 0;
    c->run_rc = green_run_timeout(1);
    c->run_err = errno;
    errno = 0;
    c->join_rc = green_joinall_count(&self, 1, 1, 1);
    c->join_err = errno;
    return NULL;
}

static void joinall_in_hub(void *arg)
{
    GREEN_ASSERT_ERRNO(green_joinall_count(arg, 1, 1, -1), EDEADLK);
}

static void *joinall_other_thread(void *arg)
{
    THREAD_EXPECT_ERRNO(green_joinall_count(arg, 1, 1, 0), EXDEV);
    green_shutdown();
    return NULL;
}

struct iw {
    green_iwait_t *it;
    int rc, err;
};

static void *iwait_g(void *arg)
{
    struct iw *w = arg;
    size_t i;
    errno = 0;
    w->rc = green_iwait_next(w->it, &i);
    w->err = errno;
    return NULL;
}

START_TEST(joinall_count_run_timeout_and_iwait_error_contexts)
{
    struct ctx_errs c;
    green_t *g = green_spawn(wrong_context, &c);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(c.run_rc, -1);
    ck_assert_int_eq(c.run_err, EDEADLK);
    ck_assert_int_eq(c.join_rc, -1);
    ck_assert_int_eq(c.join_err, EDEADLK);
    green_release(g);
    double longs = 10;
    green_t *s = green_spawn(sleep_arg, &longs);
    run_in_hub(joinall_in_hub, &s);
    run_in_thread(joinall_other_thread, &s);
    /* A killed iterator consumer: ECANCELED, and the iterator goes on. */
    green_event_t *e = green_event_new();
    green_waitable_t objs[1] = {W_EV(e)};
    struct iw w = {green_iwait_new(objs, 1, -1), 0, 0};
    g = green_spawn(iwait_g, &w);
    green_yield();
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_int_eq(w.rc, -1);
    ck_assert_int_eq(w.err, ECANCELED);
    green_event_set(e);
    size_t i = 9;
    ck_assert_int_eq(green_iwait_next(w.it, &i), 0);
    ck_assert_uint_eq(i, 0);
    green_iwait_free(w.it);
    green_event_free(e);
    green_release(g);
    green_kill(s, 5);
    green_release(s);
}
END_TEST

/******************************************************************************/
/*  The threadpool's async form                                               */
/******************************************************************************/

static int worker_started;

/* Sleeps *arg milliseconds in a worker thread and returns arg. */
static void *worker_sleep(void *arg)
{
    __atomic_store_n(&worker_started, 1, __ATOMIC_RELEASE);
    usleep((useconds_t)(*(int *)arg) * 1000);
    return arg;
}

static struct log done_log;
static int done_ran_sum;

/* done hook: records which arg and frees it. */
static void done_free(void *arg, void *value, int ran)
{
    ck_assert(!ran || value == arg);
    log_add(&done_log, *(int *)arg);
    done_ran_sum += ran;
    free(arg);
}

static int *ms(int v)
{
    int *p = malloc(sizeof *p);
    ck_assert_ptr_nonnull(p);
    *p = v;
    return p;
}

START_TEST(threadpool_async_results_can_be_waited_on_together)
{
    done_log.n = 0;
    done_ran_sum = 0;
    int *args[3] = {ms(240), ms(5), ms(120)};
    green_result_t *r[3];
    green_waitable_t objs[3];
    for (int i = 0; i < 3; i++) {
        r[i] = green_threadpool_async(worker_sleep, args[i], done_free);
        ck_assert_ptr_nonnull(r[i]);
        objs[i] = W_OBJ(GREEN_WAIT_RESULT, r[i]);
    }
    size_t ready[3];
    ck_assert_int_eq(green_wait_any(objs, 3, 3, 5, ready), 3);
    ck_assert_uint_eq(ready[0], 1);
    ck_assert_uint_eq(ready[1] + ready[2], 2);
    /* Under Valgrind the waiter may resume only after both others are
       done: one check then lists them in array order. */
    if (test_slack() < 1) {
        ck_assert_uint_eq(ready[1], 2);
        ck_assert_uint_eq(ready[2], 0);
    }
    void *v;
    ck_assert_int_eq(green_result_get(r[1], 0, &v), 0);
    ck_assert_ptr_eq(v, args[1]); /* (freed by done already) */
    ck_assert_int_eq(done_log.n, 3);
    ck_assert_int_eq(done_log.v[0], 5);
    ck_assert_int_eq(done_ran_sum, 3);
    for (int i = 0; i < 3; i++)
        green_result_free(r[i]);
    GREEN_ASSERT_ERRNO(green_threadpool_async(NULL, NULL, NULL), EINVAL);
}
END_TEST

START_TEST(threadpool_async_abandoned_job_still_calls_done)
{
    done_log.n = 0;
    done_ran_sum = 0;
    green_result_t *r = green_threadpool_async(worker_sleep, ms(20),
                                               done_free);
    ck_assert_ptr_nonnull(r);
    green_result_free(r); /* abandoned: nothing to complete later */
    for (int i = 0; i < 200 && done_log.n == 0; i++)
        green_sleep(0.005);
    int want[] = {20};
    log_expect(&done_log, want, 1);
    ck_assert_int_eq(done_ran_sum, 1);
    /* No done hook: the result alone. */
    int x = 0;
    r = green_threadpool_async(worker_sleep, &x, NULL);
    void *v;
    ck_assert_int_eq(green_result_get(r, 5, &v), 0);
    ck_assert_ptr_eq(v, &x);
    green_result_free(r);
}
END_TEST

START_TEST(threadpool_async_shutdown_reports_unrun_jobs)
{
    worker_started = 0;
    done_log.n = 0;
    done_ran_sum = 0;
    ck_assert_int_eq(green_threadpool_set_size(1), 0);
    green_result_t *a = green_threadpool_async(worker_sleep, ms(30),
                                               done_free);
    green_result_t *b = green_threadpool_async(worker_sleep, ms(1),
                                               done_free);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 1000 && !__atomic_load_n(&worker_started,
                                                 __ATOMIC_ACQUIRE); i++)
        green_sleep(0.001);
    green_shutdown(); /* waits for a; b never ran */
    int want[] = {30, 1};
    log_expect(&done_log, want, 2);
    ck_assert_int_eq(done_ran_sum, 1);
    ck_assert_int_eq(green_result_ready(a), 0);
    green_result_free(a);
    green_result_free(b);
}
END_TEST

/******************************************************************************/
/*  Signal sets and handlers                                                  */
/******************************************************************************/

/* Raise sig and let the hub poll once, so the watch counts it. */
static void raise_and_poll(int sig)
{
    ck_assert_int_eq(raise(sig), 0);
    ck_assert_int_eq(green_sleep(0.002), 0);
}

START_TEST(signal_watch_counts_and_keeps_order)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    green_sigwatch_t *w = green_signal_watch(&set);
    ck_assert_ptr_nonnull(w);
    /* Nobody waits: they are kept (SIGUSR1's default would kill us). */
    raise_and_poll(SIGUSR1);
    raise_and_poll(SIGUSR1);
    raise_and_poll(SIGUSR2);
    ck_assert_uint_eq(green_signal_pending(w, SIGUSR1), 2);
    ck_assert_uint_eq(green_signal_pending(w, SIGUSR2), 1);
    ck_assert_int_eq(green_signal_next(w, 0), SIGUSR1);
    ck_assert_int_eq(green_signal_next(w, 0), SIGUSR2);
    ck_assert_int_eq(green_signal_next(w, 0), SIGUSR1);
    GREEN_ASSERT_ERRNO(green_signal_next(w, 0), EAGAIN);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_signal_next(w, 0.02), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.02);
    GREEN_ASSERT_ERRNO(green_signal_next(w, NAN), EINVAL);
    ck_assert_uint_eq(green_signal_pending(w, 0), 0);
    green_signal_unwatch(w);
}
END_TEST

static void *raise_later(void *arg)
{
    green_sleep(0.01);
    raise(I(arg));
    return NULL;
}

struct sig_waiter {
    green_sigwatch_t *w;
    int rc, err;
};

static void *next_signal(void *arg)
{
    struct sig_waiter *s = arg;
    errno = 0;
    s->rc = green_signal_next(s->w, 5);
    s->err = errno;
    return NULL;
}

START_TEST(signal_watch_wakes_a_waiter_and_unwatch_restores)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, old, now;
    sigemptyset(&ign.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &ign, &old), 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    green_sigwatch_t *w = green_signal_watch(&set);
    green_t *g = green_spawn(raise_later, P(SIGUSR1));
    ck_assert_int_eq(green_signal_next(w, 5), SIGUSR1);
    green_join(g, 5);
    green_release(g);
    /* Unwatched while a greenlet waits: EBADF. */
    struct sig_waiter sw = {w, 0, 0};
    g = green_spawn(next_signal, &sw);
    green_yield();
    green_signal_unwatch(w);
    join_expect_failure(g, &sw.rc, &sw.err, EBADF);
    green_release(g);
    ck_assert_int_eq(sigaction(SIGUSR1, NULL, &now), 0);
    ck_assert_ptr_eq((void *)now.sa_handler, (void *)SIG_IGN);
    sigaction(SIGUSR1, &old, NULL);
}
END_TEST

static int handled;

static void *on_signal(void *arg)
{
    handled += I(arg);
    return NULL;
}

static void *watch_in_thread(void *arg)
{
    THREAD_EXPECT_ERRNO(green_signal_watch(arg), EBUSY);
    green_shutdown();
    return NULL;
}

START_TEST(signal_handler_spawns_per_delivery)
{
    handled = 0;
    green_sigwatch_t *h = green_signal_handler(SIGUSR2, on_signal, P(1));
    ck_assert_ptr_nonnull(h);
    raise_and_poll(SIGUSR2);
    raise_and_poll(SIGUSR2);
    ck_assert_int_eq(green_sleep(0.002), 0);
    ck_assert_int_eq(handled, 2);
    GREEN_ASSERT_ERRNO(green_signal_next(h, 0), EINVAL);
    /* Another thread's hub cannot take a signal this one holds. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    run_in_thread(watch_in_thread, &set);
    green_signal_unwatch(h);
    GREEN_ASSERT_ERRNO(green_signal_handler(SIGUSR2, NULL, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_signal_handler(SIGKILL, on_signal, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_signal_watch(NULL), EINVAL);
    sigemptyset(&set);
    GREEN_ASSERT_ERRNO(green_signal_watch(&set), EINVAL);
    sigaddset(&set, SIGSEGV);
    GREEN_ASSERT_ERRNO(green_signal_watch(&set), EINVAL);
    GREEN_ASSERT_ERRNO(green_signal_next(NULL, 0), EINVAL);
    green_signal_unwatch(NULL);
}
END_TEST

START_TEST(signal_watch_outlives_shutdown)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    green_sigwatch_t *w = green_signal_watch(&set);
    ck_assert_ptr_nonnull(w);
    green_shutdown(); /* stops it; unwatch only frees */
    green_signal_unwatch(w);
}
END_TEST

static Suite *waitany_suite(void)
{
    Suite *s = suite_create("waitany");
    TCase *tc;

#define GREEN_TCASE(name)                                                   \
    tc = tcase_create(name);                                                \
    tcase_add_checked_fixture(tc, test_alarm_setup, test_alarm_teardown);   \
    suite_add_tcase(s, tc)

    GREEN_TCASE("wait_any");
    tcase_add_test(tc, wait_any_reports_in_firing_order);
    tcase_add_test(tc, wait_any_times_out_with_what_is_ready);
    tcase_add_test(tc, wait_any_never_takes_a_queue_item);
    tcase_add_test(tc, wait_any_put_still_goes_to_a_real_getter);
    tcase_add_test(tc, wait_any_rechecks_a_queue_emptied_before_it_resumed);
    tcase_add_test(tc, wait_any_sees_room_in_a_full_queue_and_channels);
    tcase_add_test(tc, wait_any_reports_a_closed_queue);
    tcase_add_test(tc, wait_any_never_takes_a_semaphore_unit);
    tcase_add_test(tc, wait_any_mixes_results_greenlets_and_fds);
    tcase_add_test(tc, wait_any_killed_or_timed_out_waiter_leaves_the_objects);
    tcase_add_test(tc, wait_any_object_freed_meanwhile_is_ebadf);
    tcase_add_test(tc, wait_any_bad_arguments_and_contexts);

    GREEN_TCASE("iwait");
    tcase_add_test(tc, iwait_yields_each_object_once_in_order);

    GREEN_TCASE("joinall_run");
    tcase_add_test(tc, joinall_count_returns_after_the_first_k);
    tcase_add_test(tc, joinall_count_many_greenlets);
    tcase_add_test(tc, run_timeout_returns_while_greenlets_live);
    tcase_add_test(tc, joinall_count_run_timeout_and_iwait_error_contexts);

    GREEN_TCASE("threadpool_async");
    tcase_add_test(tc, threadpool_async_results_can_be_waited_on_together);
    tcase_add_test(tc, threadpool_async_abandoned_job_still_calls_done);
    tcase_add_test(tc, threadpool_async_shutdown_reports_unrun_jobs);

    GREEN_TCASE("signals");
    tcase_add_test(tc, signal_watch_counts_and_keeps_order);
    tcase_add_test(tc, signal_watch_wakes_a_waiter_and_unwatch_restores);
    tcase_add_test(tc, signal_handler_spawns_per_delivery);
    tcase_add_test(tc, signal_watch_outlives_shutdown);
    return s;
}

GREEN_TEST_MAIN(waitany_suite)
