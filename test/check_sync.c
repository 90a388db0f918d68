/* Events, AsyncResult, semaphores, locks and condition variables: wake
   order, timeouts and kills while waiting (the next waiter still gets its
   wake-up), bounded semaphore overflow, lock ownership and recursion, and
   every error path. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "synctest.h"

/******************************************************************************/
/*  Event                                                                     */
/******************************************************************************/

struct ev_waiter {
    green_event_t *e;
    struct log *log;
    int id;
    double timeout;
    int rc, err;
};

static void *event_waiter(void *arg)
{
    struct ev_waiter *w = arg;
    errno = 0;
    w->rc = green_event_wait(w->e, w->timeout);
    w->err = errno;
    if (w->log)
        log_add(w->log, w->id);
    return NULL;
}

START_TEST(event_wait_returns_at_once_when_set)
{
    green_event_t *e = green_event_new();
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(green_event_is_set(e), 0);
    ck_assert_int_eq(green_event_set(e), 0);
    ck_assert_int_eq(green_event_is_set(e), 1);
    ck_assert_int_eq(green_event_wait(e, 0), 0);
    ck_assert_int_eq(green_event_wait(e, -1), 0);
    ck_assert_int_eq(green_event_set(e), 0); /* setting again is fine */
    ck_assert_int_eq(green_event_clear(e), 0);
    ck_assert_int_eq(green_event_is_set(e), 0);
    GREEN_ASSERT_ERRNO(green_event_wait(e, 0), EAGAIN);
    green_event_free(e);
}
END_TEST

START_TEST(event_set_wakes_every_waiter_in_wait_order)
{
    green_event_t *e = green_event_new();
    struct log log = {.n = 0};
    struct ev_waiter w[5];
    green_t *g[5];
    /* Spawned in reverse so the wait order differs from the spawn ids. */
    for (int i = 4; i >= 0; i--) {
        w[i] = (struct ev_waiter){e, &log, i, -1, -2, 0};
        g[i] = green_spawn(event_waiter, &w[i]);
    }
    green_yield(); /* all five are parked now, 4 first */
    ck_assert_int_eq(log.n, 0);
    ck_assert_int_eq(green_event_set(e), 0);
    /* Cleared before the waiters run: they were woken, they return 0. */
    ck_assert_int_eq(green_event_clear(e), 0);
    ck_assert_int_eq(green_joinall(g, 5, 5), 0);
    int want[] = {4, 3, 2, 1, 0};
    log_expect(&log, want, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(w[i].rc, 0);
        green_release(g[i]);
    }
    green_event_free(e);
}
END_TEST

START_TEST(event_wait_times_out_not_early)
{
    green_event_t *e = green_event_new();
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_event_wait(e, 0.05), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    green_event_free(e);
}
END_TEST

START_TEST(event_killed_and_timed_out_waiters_leave_others_woken)
{
    green_event_t *e = green_event_new();
    struct log log = {.n = 0};
    struct ev_waiter w[3] = {{e, &log, 0, -1, -2, 0},
                             {e, &log, 1, 0.02, -2, 0},
                             {e, &log, 2, -1, -2, 0}};
    green_t *g[3];
    for (int i = 0; i < 3; i++)
        g[i] = green_spawn(event_waiter, &w[i]);
    green_yield();
    ck_assert_int_eq(green_kill(g[0], 0), 0);
    ck_assert_int_eq(green_sleep(0.05), 0); /* w[1] times out */
    ck_assert_int_eq(green_event_set(e), 0);
    ck_assert_int_eq(green_joinall(g, 3, 5), 0);
    ck_assert_int_eq(w[0].rc, -1);
    ck_assert_int_eq(w[0].err, ECANCELED);
    ck_assert_int_eq(w[1].rc, -1);
    ck_assert_int_eq(w[1].err, ETIMEDOUT);
    ck_assert_int_eq(w[2].rc, 0);
    int want[] = {0, 1, 2};
    log_expect(&log, want, 3);
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
    green_event_free(e);
}
END_TEST

START_TEST(event_free_wakes_waiters_with_ebadf)
{
    green_event_t *e = green_event_new();
    struct ev_waiter w[2] = {{e, NULL, 0, -1, -2, 0}, {e, NULL, 1, -1, -2, 0}};
    green_t *g[2] = {green_spawn(event_waiter, &w[0]),
                     green_spawn(event_waiter, &w[1])};
    green_yield();
    green_event_free(e);
    ck_assert_int_eq(green_joinall(g, 2, 5), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(w[i].rc, -1);
        ck_assert_int_eq(w[i].err, EBADF);
        green_release(g[i]);
    }
}
END_TEST

START_TEST(event_wait_nothing_else_alive_is_edeadlk)
{
    green_event_t *e = green_event_new();
    GREEN_ASSERT_ERRNO(green_event_wait(e, -1), EDEADLK);
    green_event_free(e);
}
END_TEST

static void event_hub_ops(void *arg)
{
    green_event_t *e = arg;
    GREEN_ASSERT_ERRNO(green_event_wait(e, -1), EDEADLK);
    /* Not waiting at all is allowed anywhere: EAGAIN (bug #19). */
    GREEN_ASSERT_ERRNO(green_event_wait(e, 0), EAGAIN);
    /* Setting never blocks: fine from a callback, and it wakes main. */
    ck_assert_int_eq(green_event_set(e), 0);
    ck_assert_int_eq(green_event_wait(e, -1), 0);
}

START_TEST(event_in_hub_sets_but_cannot_wait)
{
    green_event_t *e = green_event_new();
    run_in_hub(event_hub_ops, e);
    ck_assert_int_eq(green_event_is_set(e), 1);
    green_event_free(e);
}
END_TEST

START_TEST(event_bad_arguments)
{
    GREEN_ASSERT_ERRNO(green_event_set(NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_event_clear(NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_event_wait(NULL, 0), EINVAL);
    ck_assert_int_eq(green_event_is_set(NULL), 0);
    green_event_free(NULL);
    green_event_t *e = green_event_new();
    GREEN_ASSERT_ERRNO(green_event_wait(e, NAN), EINVAL);
    green_event_set(e);
    GREEN_ASSERT_ERRNO(green_event_wait(e, NAN), EINVAL);
    green_event_free(e);
}
END_TEST

static void *event_waiter_after_yield(void *arg)
{
    green_yield(); /* killed while runnable here */
    return event_waiter(arg);
}

START_TEST(event_wait_by_killed_greenlet_is_ecanceled)
{
    green_event_t *e = green_event_new();
    struct ev_waiter w = {e, NULL, 0, -1, -2, 0};
    green_t *g = green_spawn(event_waiter_after_yield, &w);
    green_yield();
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_int_eq(w.rc, -1);
    ck_assert_int_eq(w.err, ECANCELED);
    green_release(g);
    green_event_free(e);
}
END_TEST

static void *event_cross_thread(void *arg)
{
    green_event_t *e = arg;
    THREAD_EXPECT_ERRNO(green_event_set(e), EXDEV);
    THREAD_EXPECT_ERRNO(green_event_clear(e), EXDEV);
    THREAD_EXPECT_ERRNO(green_event_wait(e, 0), EXDEV);
    return NULL;
}

START_TEST(event_from_another_thread_is_exdev)
{
    green_event_t *e = green_event_new();
    run_in_thread(event_cross_thread, e);
    ck_assert_int_eq(green_event_is_set(e), 0);
    green_event_free(e);
}
END_TEST

/******************************************************************************/
/*  AsyncResult                                                               */
/******************************************************************************/

struct res_getter {
    green_result_t *r;
    struct log *log;
    int id;
    double timeout;
    int rc, err;
    void *value;
};

static void *result_getter(void *arg)
{
    struct res_getter *w = arg;
    errno = 0;
    w->value = (void *)1;
    w->rc = green_result_get(w->r, w->timeout, &w->value);
    w->err = errno;
    if (w->log)
        log_add(w->log, w->id);
    return NULL;
}

START_TEST(result_every_getter_gets_the_value_in_wait_order)
{
    green_result_t *r = green_result_new();
    ck_assert_int_eq(green_result_ready(r), 0);
    struct log log = {.n = 0};
    struct res_getter w[4];
    green_t *g[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct res_getter){r, &log, i, -1, -2, 0, NULL};
        g[i] = green_spawn(result_getter, &w[i]);
    }
    green_yield();
    ck_assert_int_eq(green_result_set(r, (void *)42), 0);
    ck_assert_int_eq(green_result_ready(r), 1);
    /* Freed before the getters run: the value was handed to them. */
    green_result_free(r);
    ck_assert_int_eq(green_joinall(g, 4, 5), 0);
    int want[] = {0, 1, 2, 3};
    log_expect(&log, want, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(w[i].rc, 0);
        ck_assert_ptr_eq(w[i].value, (void *)42);
        green_release(g[i]);
    }
}
END_TEST

START_TEST(result_set_error_fails_every_getter_with_it)
{
    green_result_t *r = green_result_new();
    struct res_getter w = {r, NULL, 0, -1, -2, 0, NULL};
    green_t *g = green_spawn(result_getter, &w);
    green_yield();
    ck_assert_int_eq(green_result_set_error(r, EIO), 0);
    join_expect_failure(g, &w.rc, &w.err, EIO);
    ck_assert_ptr_null(w.value);
    /* Later getters get the same, at once. */
    void *v = (void *)1;
    GREEN_ASSERT_ERRNO(green_result_get(r, 0, &v), EIO);
    ck_assert_ptr_null(v);
    green_release(g);
    green_result_free(r);
}
END_TEST

START_TEST(result_is_set_once)
{
    green_result_t *r = green_result_new();
    ck_assert_int_eq(green_result_set(r, NULL), 0);
    GREEN_ASSERT_ERRNO(green_result_set(r, (void *)1), EINVAL);
    GREEN_ASSERT_ERRNO(green_result_set_error(r, EIO), EINVAL);
    void *v = (void *)1;
    ck_assert_int_eq(green_result_get(r, 0, &v), 0);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(green_result_get(r, -1, NULL), 0);
    green_result_free(r);
}
END_TEST

START_TEST(result_get_times_out_and_killed_getter_leaves_others)
{
    green_result_t *r = green_result_new();
    void *v;
    GREEN_ASSERT_ERRNO(green_result_get(r, 0, &v), EAGAIN);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_result_get(r, 0.03, &v), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    struct res_getter w[2] = {{r, NULL, 0, -1, -2, 0, NULL},
                              {r, NULL, 1, -1, -2, 0, NULL}};
    green_t *g[2] = {green_spawn(result_getter, &w[0]),
                     green_spawn(result_getter, &w[1])};
    green_yield();
    green_kill(g[0], 0);
    green_result_set(r, (void *)7); /* before the killed one resumes */
    ck_assert_int_eq(green_joinall(g, 2, 5), 0);
    ck_assert_int_eq(w[0].rc, -1);
    ck_assert_int_eq(w[0].err, ECANCELED);
    ck_assert_int_eq(w[1].rc, 0);
    ck_assert_ptr_eq(w[1].value, (void *)7);
    green_release(g[0]);
    green_release(g[1]);
    green_result_free(r);
}
END_TEST

START_TEST(result_free_wakes_getters_with_ebadf)
{
    green_result_t *r = green_result_new();
    struct res_getter w = {r, NULL, 0, -1, -2, 0, NULL};
    green_t *g = green_spawn(result_getter, &w);
    green_yield();
    green_result_free(r);
    join_expect_failure(g, &w.rc, &w.err, EBADF);
    green_release(g);
}
END_TEST

static void *result_cross_thread(void *arg)
{
    green_result_t *r = arg;
    void *v;
    THREAD_EXPECT_ERRNO(green_result_set(r, NULL), EXDEV);
    THREAD_EXPECT_ERRNO(green_result_set_error(r, EIO), EXDEV);
    THREAD_EXPECT_ERRNO(green_result_get(r, 0, &v), EXDEV);
    return NULL;
}

START_TEST(result_bad_arguments)
{
    void *v;
    GREEN_ASSERT_ERRNO(green_result_set(NULL, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_result_set_error(NULL, EIO), EINVAL);
    GREEN_ASSERT_ERRNO(green_result_get(NULL, 0, &v), EINVAL);
    ck_assert_int_eq(green_result_ready(NULL), 0);
    green_result_free(NULL);
    green_result_t *r = green_result_new();
    GREEN_ASSERT_ERRNO(green_result_set_error(r, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_result_set_error(r, -5), EINVAL);
    GREEN_ASSERT_ERRNO(green_result_get(r, NAN, &v), EINVAL);
    ck_assert_int_eq(green_result_ready(r), 0);
    run_in_thread(result_cross_thread, r);
    ck_assert_int_eq(green_result_ready(r), 0);
    green_result_free(r);
}
END_TEST

/******************************************************************************/
/*  Semaphore                                                                 */
/******************************************************************************/

struct sem_waiter {
    green_sem_t *s;
    struct log *log;
    int id;
    double timeout;
    int rc, err;
};

static void *sem_waiter(void *arg)
{
    struct sem_waiter *w = arg;
    errno = 0;
    w->rc = green_sem_acquire(w->s, w->timeout);
    w->err = errno;
    if (w->log && w->rc == 0)
        log_add(w->log, w->id);
    return NULL;
}

START_TEST(sem_counts_units)
{
    green_sem_t *s = green_sem_new(2, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(green_sem_acquire(s, 0), 0);
    ck_assert_int_eq(green_sem_acquire(s, -1), 0);
    GREEN_ASSERT_ERRNO(green_sem_acquire(s, 0), EAGAIN);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_sem_acquire(s, 0.03), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    /* Unbounded: any number of releases. */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(green_sem_release(s), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(green_sem_acquire(s, 0), 0);
    GREEN_ASSERT_ERRNO(green_sem_acquire(s, 0), EAGAIN);
    green_sem_free(s);
}
END_TEST

START_TEST(sem_release_wakes_waiters_in_fifo_order)
{
    green_sem_t *s = green_sem_new(0, 0);
    struct log log = {.n = 0};
    struct sem_waiter w[5];
    green_t *g[5];
    for (int i = 0; i < 5; i++) {
        w[i] = (struct sem_waiter){s, &log, i, -1, -2, 0};
        g[i] = green_spawn(sem_waiter, &w[i]);
    }
    green_yield();
    /* Five releases at once: each unit goes to the next waiter. */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(green_sem_release(s), 0);
    /* Handed over, not counted: a newcomer finds nothing. */
    GREEN_ASSERT_ERRNO(green_sem_acquire(s, 0), EAGAIN);
    ck_assert_int_eq(green_joinall(g, 5, 5), 0);
    int want[] = {0, 1, 2, 3, 4};
    log_expect(&log, want, 5);
    for (int i = 0; i < 5; i++)
        green_release(g[i]);
    green_sem_free(s);
}
END_TEST

START_TEST(sem_killed_waiter_never_consumes_a_unit)
{
    green_sem_t *s = green_sem_new(0, 0);
    struct log log = {.n = 0};
    struct sem_waiter w[3] = {{s, &log, 0, -1, -2, 0},
                              {s, &log, 1, -1, -2, 0},
                              {s, &log, 2, -1, -2, 0}};
    green_t *g[3];
    for (int i = 0; i < 3; i++)
        g[i] = green_spawn(sem_waiter, &w[i]);
    green_yield();
    /* Killed, then a release before it resumes: the unit skips it. */
    ck_assert_int_eq(green_kill(g[0], 0), 0);
    ck_assert_int_eq(green_sem_release(s), 0);
    ck_assert_int_eq(green_join(g[0], 5), 0);
    ck_assert_int_eq(green_join(g[1], 5), 0);
    ck_assert_int_eq(w[0].rc, -1);
    ck_assert_int_eq(w[0].err, ECANCELED);
    ck_assert_int_eq(w[1].rc, 0);
    ck_assert_int_eq(green_done(g[2]), 0);
    GREEN_ASSERT_ERRNO(green_sem_acquire(s, 0), EAGAIN);
    ck_assert_int_eq(green_sem_release(s), 0);
    ck_assert_int_eq(green_join(g[2], 5), 0);
    int want[] = {1, 2};
    log_expect(&log, want, 2);
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
    green_sem_free(s);
}
END_TEST

START_TEST(sem_timed_out_waiter_never_consumes_a_unit)
{
    green_sem_t *s = green_sem_new(0, 0);
    struct log log = {.n = 0};
    struct sem_waiter w[2] = {{s, &log, 0, 0.02, -2, 0},
                              {s, &log, 1, -1, -2, 0}};
    green_t *g[2] = {green_spawn(sem_waiter, &w[0]),
                     green_spawn(sem_waiter, &w[1])};
    ck_assert_int_eq(green_join(g[0], 5), 0);
    ck_assert_int_eq(w[0].rc, -1);
    ck_assert_int_eq(w[0].err, ETIMEDOUT);
    ck_assert_int_eq(green_sem_release(s), 0);
    ck_assert_int_eq(green_join(g[1], 5), 0);
    ck_assert_int_eq(w[1].rc, 0);
    GREEN_ASSERT_ERRNO(green_sem_acquire(s, 0), EAGAIN);
    int want[] = {1};
    log_expect(&log, want, 1);
    green_release(g[0]);
    green_release(g[1]);
    green_sem_free(s);
}
END_TEST

START_TEST(sem_bounded_release_past_bound_is_eoverflow)
{
    GREEN_ASSERT_ERRNO(green_sem_new(2, 1), EINVAL);
    green_sem_t *s = green_sem_new(1, 1);
    GREEN_ASSERT_ERRNO(green_sem_release(s), EOVERFLOW);
    ck_assert_int_eq(green_sem_acquire(s, 0), 0);
    ck_assert_int_eq(green_sem_release(s), 0);
    GREEN_ASSERT_ERRNO(green_sem_release(s), EOVERFLOW);
    /* A release handed to a waiter does not count against the bound. */
    ck_assert_int_eq(green_sem_acquire(s, 0), 0);
    struct sem_waiter w = {s, NULL, 0, -1, -2, 0};
    green_t *g = green_spawn(sem_waiter, &w);
    green_yield();
    ck_assert_int_eq(green_sem_release(s), 0); /* to the waiter */
    ck_assert_int_eq(green_sem_release(s), 0); /* count 0 -> 1 */
    GREEN_ASSERT_ERRNO(green_sem_release(s), EOVERFLOW);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(w.rc, 0);
    green_release(g);
    green_sem_free(s);
}
END_TEST

START_TEST(sem_free_wakes_waiters_with_ebadf)
{
    green_sem_t *s = green_sem_new(0, 0);
    struct sem_waiter w[2] = {{s, NULL, 0, -1, -2, 0},
                              {s, NULL, 1, -1, -2, 0}};
    green_t *g[2] = {green_spawn(sem_waiter, &w[0]),
                     green_spawn(sem_waiter, &w[1])};
    green_yield();
    /* The first gets the unit, the second EBADF, even though the
       semaphore is gone before either runs. */
    ck_assert_int_eq(green_sem_release(s), 0);
    green_sem_free(s);
    ck_assert_int_eq(green_joinall(g, 2, 5), 0);
    ck_assert_int_eq(w[0].rc, 0);
    ck_assert_int_eq(w[1].rc, -1);
    ck_assert_int_eq(w[1].err, EBADF);
    green_release(g[0]);
    green_release(g[1]);
}
END_TEST

static void sem_hub_ops(void *arg)
{
    green_sem_t *s = arg;
    ck_assert_int_eq(green_sem_acquire(s, 0), 0); /* available: fine */
    GREEN_ASSERT_ERRNO(green_sem_acquire(s, -1), EDEADLK);
    ck_assert_int_eq(green_sem_release(s), 0);
}

static void *sem_cross_thread(void *arg)
{
    green_sem_t *s = arg;
    THREAD_EXPECT_ERRNO(green_sem_acquire(s, 0), EXDEV);
    THREAD_EXPECT_ERRNO(green_sem_release(s), EXDEV);
    return NULL;
}

START_TEST(sem_bad_arguments_hub_and_threads)
{
    GREEN_ASSERT_ERRNO(green_sem_acquire(NULL, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_sem_release(NULL), EINVAL);
    green_sem_free(NULL);
    green_sem_t *s = green_sem_new(1, 0);
    GREEN_ASSERT_ERRNO(green_sem_acquire(s, NAN), EINVAL);
    run_in_hub(sem_hub_ops, s);
    run_in_thread(sem_cross_thread, s);
    ck_assert_int_eq(green_sem_acquire(s, 0), 0);
    GREEN_ASSERT_ERRNO(green_sem_acquire(s, 0), EAGAIN);
    green_sem_free(s);
}
END_TEST

/******************************************************************************/
/*  Lock                                                                      */
/******************************************************************************/

struct lock_user {
    green_lock_t *l;
    struct log *log;
    int id;
    double timeout;
    int hold_yields; /* yields while holding it */
    int release;     /* release it afterwards */
    int rc, err, rel_rc, rel_err;
};

static void *lock_user(void *arg)
{
    struct lock_user *u = arg;
    errno = 0;
    u->rc = green_lock_acquire(u->l, u->timeout);
    u->err = errno;
    if (u->rc != 0)
        return NULL;
    if (u->log)
        log_add(u->log, u->id);
    for (int i = 0; i < u->hold_yields; i++)
        green_yield();
    if (u->release) {
        errno = 0;
        u->rel_rc = green_lock_release(u->l);
        u->rel_err = errno;
    }
    return NULL;
}

static void *lock_releaser(void *arg)
{
    green_lock_t *l = arg;
    GREEN_ASSERT_ERRNO(green_lock_release(l), EPERM);
    return NULL;
}

START_TEST(lock_release_requires_ownership)
{
    green_lock_t *l = green_lock_new(0);
    ck_assert_ptr_nonnull(l);
    GREEN_ASSERT_ERRNO(green_lock_release(l), EPERM); /* not held */
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    /* Held by main: another greenlet may not release it. */
    green_t *g = green_spawn(lock_releaser, l);
    ck_assert_int_eq(green_join(g, 5), 0);
    green_release(g);
    /* Nor take it. */
    struct lock_user u = {l, NULL, 0, 0, 0, 0, -2, 0, 0, 0};
    g = green_spawn(lock_user, &u);
    join_expect_failure(g, &u.rc, &u.err, EAGAIN);
    green_release(g);
    ck_assert_int_eq(green_lock_release(l), 0);
    GREEN_ASSERT_ERRNO(green_lock_release(l), EPERM);
    green_lock_free(l);
}
END_TEST

START_TEST(lock_non_recursive_reacquire_is_edeadlk)
{
    green_lock_t *l = green_lock_new(0);
    ck_assert_int_eq(green_lock_acquire(l, -1), 0);
    GREEN_ASSERT_ERRNO(green_lock_acquire(l, -1), EDEADLK);
    GREEN_ASSERT_ERRNO(green_lock_acquire(l, 0), EDEADLK);
    ck_assert_int_eq(green_lock_release(l), 0);
    GREEN_ASSERT_ERRNO(green_lock_release(l), EPERM);
    green_lock_free(l);
}
END_TEST

START_TEST(lock_recursive_counts_acquisitions)
{
    green_lock_t *l = green_lock_new(1);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    struct lock_user u = {l, NULL, 0, 0, 0, 1, -2, 0, 0, 0};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(green_lock_release(l), 0);
        /* Still held: another greenlet cannot take it. */
        green_t *g = green_spawn(lock_user, &u);
        join_expect_failure(g, &u.rc, &u.err, EAGAIN);
        green_release(g);
    }
    ck_assert_int_eq(green_lock_release(l), 0);
    GREEN_ASSERT_ERRNO(green_lock_release(l), EPERM);
    green_t *g = green_spawn(lock_user, &u);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(u.rc, 0);
    ck_assert_int_eq(u.rel_rc, 0);
    green_release(g);
    green_lock_free(l);
}
END_TEST

START_TEST(lock_passes_to_waiters_in_fifo_order)
{
    green_lock_t *l = green_lock_new(0);
    ck_assert_int_eq(green_lock_acquire(l, -1), 0);
    struct log log = {.n = 0};
    struct lock_user u[4];
    green_t *g[4];
    for (int i = 0; i < 4; i++) {
        u[i] = (struct lock_user){l, &log, i, -1, 2, 1, -2, 0, -2, 0};
        g[i] = green_spawn(lock_user, &u[i]);
    }
    green_yield();
    ck_assert_int_eq(log.n, 0);
    ck_assert_int_eq(green_lock_release(l), 0);
    /* Handed to the first waiter: main cannot barge in. */
    GREEN_ASSERT_ERRNO(green_lock_acquire(l, 0), EAGAIN);
    ck_assert_int_eq(green_joinall(g, 4, 5), 0);
    int want[] = {0, 1, 2, 3};
    log_expect(&log, want, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(u[i].rel_rc, 0);
        green_release(g[i]);
    }
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    green_lock_free(l); /* freeing a held lock is fine */
}
END_TEST

START_TEST(lock_timed_out_or_killed_waiter_leaves_it_to_the_next)
{
    green_lock_t *l = green_lock_new(0);
    ck_assert_int_eq(green_lock_acquire(l, -1), 0);
    struct log log = {.n = 0};
    struct lock_user u[3] = {{l, &log, 0, 0.02, 0, 1, -2, 0, -2, 0},
                             {l, &log, 1, -1, 0, 1, -2, 0, -2, 0},
                             {l, &log, 2, -1, 0, 1, -2, 0, -2, 0}};
    green_t *g[3];
    for (int i = 0; i < 3; i++)
        g[i] = green_spawn(lock_user, &u[i]);
    ck_assert_int_eq(green_join(g[0], 5), 0);
    ck_assert_int_eq(u[0].rc, -1);
    ck_assert_int_eq(u[0].err, ETIMEDOUT);
    ck_assert_int_eq(green_kill(g[1], 0), 0);
    ck_assert_int_eq(green_lock_release(l), 0); /* g[1] not resumed yet */
    ck_assert_int_eq(green_joinall(g, 3, 5), 0);
    ck_assert_int_eq(u[1].rc, -1);
    ck_assert_int_eq(u[1].err, ECANCELED);
    ck_assert_int_eq(u[2].rc, 0);
    int want[] = {2};
    log_expect(&log, want, 1);
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    ck_assert_int_eq(green_lock_release(l), 0);
    green_lock_free(l);
}
END_TEST

START_TEST(lock_held_by_a_finished_greenlet_stays_held)
{
    green_lock_t *l = green_lock_new(0);
    struct lock_user u = {l, NULL, 0, -1, 0, 0, -2, 0, 0, 0};
    green_t *g = green_spawn(lock_user, &u);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(u.rc, 0);
    green_release(g);
    GREEN_ASSERT_ERRNO(green_lock_acquire(l, 0), EAGAIN);
    GREEN_ASSERT_ERRNO(green_lock_release(l), EPERM);
    green_lock_free(l);
}
END_TEST

START_TEST(lock_free_wakes_waiters_with_ebadf)
{
    green_lock_t *l = green_lock_new(0);
    ck_assert_int_eq(green_lock_acquire(l, -1), 0);
    struct lock_user u = {l, NULL, 0, -1, 0, 0, -2, 0, 0, 0};
    green_t *g = green_spawn(lock_user, &u);
    green_yield();
    green_lock_free(l);
    join_expect_failure(g, &u.rc, &u.err, EBADF);
    green_release(g);
}
END_TEST

static void *lock_cross_thread(void *arg)
{
    green_lock_t *l = arg;
    THREAD_EXPECT_ERRNO(green_lock_acquire(l, 0), EXDEV);
    THREAD_EXPECT_ERRNO(green_lock_release(l), EXDEV);
    return NULL;
}

static void lock_hub_ops(void *arg)
{
    green_lock_t *l = arg; /* held by main */
    GREEN_ASSERT_ERRNO(green_lock_acquire(l, -1), EDEADLK);
    GREEN_ASSERT_ERRNO(green_lock_release(l), EPERM);
}

START_TEST(lock_bad_arguments_hub_and_threads)
{
    GREEN_ASSERT_ERRNO(green_lock_acquire(NULL, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_lock_release(NULL), EINVAL);
    green_lock_free(NULL);
    green_lock_t *l = green_lock_new(0);
    GREEN_ASSERT_ERRNO(green_lock_acquire(l, NAN), EINVAL);
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    run_in_hub(lock_hub_ops, l);
    run_in_thread(lock_cross_thread, l);
    ck_assert_int_eq(green_lock_release(l), 0);
    green_lock_free(l);
}
END_TEST

/******************************************************************************/
/*  Condition variable                                                        */
/******************************************************************************/

struct cond_waiter {
    green_cond_t *c;
    green_lock_t *l;
    struct log *log;
    int id;
    double timeout;
    int rc, err;
    int held_after;  /* releasing the lock afterwards worked */
    int rel_count;   /* successful releases (recursive locks) */
};

static void *cond_waiter(void *arg)
{
    struct cond_waiter *w = arg;
    if (green_lock_acquire(w->l, -1) != 0)
        return NULL;
    errno = 0;
    w->rc = green_cond_wait(w->c, w->l, w->timeout);
    w->err = errno;
    if (w->log)
        log_add(w->log, w->id);
    w->held_after = green_lock_release(w->l) == 0;
    return NULL;
}

START_TEST(cond_signal_wakes_the_oldest_broadcast_all_in_order)
{
    green_cond_t *c = green_cond_new();
    green_lock_t *l = green_lock_new(0);
    struct log log = {.n = 0};
    struct cond_waiter w[4];
    green_t *g[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct cond_waiter){c, l, &log, i, -1, -2, 0, 0, 0};
        g[i] = green_spawn(cond_waiter, &w[i]);
    }
    green_yield();
    /* Every waiter released the lock while waiting. */
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    ck_assert_int_eq(green_cond_signal(c), 0);
    ck_assert_int_eq(green_lock_release(l), 0);
    ck_assert_int_eq(green_join(g[0], 5), 0);
    ck_assert_int_eq(green_done(g[1]), 0);
    ck_assert_int_eq(green_cond_broadcast(c), 0); /* without the lock */
    ck_assert_int_eq(green_joinall(g, 4, 5), 0);
    int want[] = {0, 1, 2, 3};
    log_expect(&log, want, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(w[i].rc, 0);
        ck_assert_int_eq(w[i].held_after, 1);
        green_release(g[i]);
    }
    ck_assert_int_eq(green_cond_signal(c), 0); /* nobody waits: no-op */
    green_cond_free(c);
    green_lock_free(l);
}
END_TEST

START_TEST(cond_wait_needs_the_lock)
{
    green_cond_t *c = green_cond_new();
    green_lock_t *l = green_lock_new(0);
    GREEN_ASSERT_ERRNO(green_cond_wait(c, l, 0.01), EPERM);
    /* Held by another greenlet: still EPERM. */
    struct lock_user u = {l, NULL, 0, -1, 0, 0, -2, 0, 0, 0};
    green_t *g = green_spawn(lock_user, &u);
    ck_assert_int_eq(green_join(g, 5), 0);
    GREEN_ASSERT_ERRNO(green_cond_wait(c, l, 0.01), EPERM);
    green_release(g);
    green_cond_free(c);
    green_lock_free(l);
}
END_TEST

START_TEST(cond_wait_timeout_returns_with_the_lock_held)
{
    green_cond_t *c = green_cond_new();
    green_lock_t *l = green_lock_new(0);
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    GREEN_ASSERT_ERRNO(green_cond_wait(c, l, 0), EAGAIN);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_cond_wait(c, l, 0.03), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    ck_assert_int_eq(green_lock_release(l), 0);
    GREEN_ASSERT_ERRNO(green_lock_release(l), EPERM);
    green_cond_free(c);
    green_lock_free(l);
}
END_TEST

static void *cond_recursive_waiter(void *arg)
{
    struct cond_waiter *w = arg;
    for (int i = 0; i < 3; i++)
        green_lock_acquire(w->l, -1);
    w->rc = green_cond_wait(w->c, w->l, -1);
    while (green_lock_release(w->l) == 0)
        w->rel_count++;
    return NULL;
}

START_TEST(cond_wait_restores_recursive_depth)
{
    green_cond_t *c = green_cond_new();
    green_lock_t *l = green_lock_new(1);
    struct cond_waiter w = {c, l, NULL, 0, -1, -2, 0, 0, 0};
    green_t *g = green_spawn(cond_recursive_waiter, &w);
    green_yield();
    /* Fully released while it waits. */
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    ck_assert_int_eq(green_cond_signal(c), 0);
    green_yield();
    ck_assert_int_eq(green_done(g), 0); /* waiting for the lock now */
    ck_assert_int_eq(green_lock_release(l), 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(w.rc, 0);
    ck_assert_int_eq(w.rel_count, 3);
    green_release(g);
    green_cond_free(c);
    green_lock_free(l);
}
END_TEST

START_TEST(cond_killed_waiter_gets_the_lock_back_before_returning)
{
    green_cond_t *c = green_cond_new();
    green_lock_t *l = green_lock_new(0);
    struct log log = {.n = 0};
    struct cond_waiter w[2] = {{c, l, &log, 0, -1, -2, 0, 0, 0},
                               {c, l, &log, 1, -1, -2, 0, 0, 0}};
    green_t *g[2] = {green_spawn(cond_waiter, &w[0]),
                     green_spawn(cond_waiter, &w[1])};
    green_yield();
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    /* Killed while main holds the lock: it waits for it regardless. */
    ck_assert_int_eq(green_kill(g[0], 0), 0);
    green_yield();
    ck_assert_int_eq(green_done(g[0]), 0);
    ck_assert_int_eq(green_kill(g[0], 0), 0); /* again: still waits */
    green_yield();
    ck_assert_int_eq(green_done(g[0]), 0);
    /* The signal goes to w[1]: the killed waiter left the condition. */
    ck_assert_int_eq(green_cond_signal(c), 0);
    ck_assert_int_eq(green_lock_release(l), 0);
    ck_assert_int_eq(green_joinall(g, 2, 5), 0);
    ck_assert_int_eq(w[0].rc, -1);
    ck_assert_int_eq(w[0].err, ECANCELED);
    ck_assert_int_eq(w[0].held_after, 1);
    ck_assert_int_eq(w[1].rc, 0);
    ck_assert_int_eq(w[1].held_after, 1);
    int want[] = {0, 1};
    log_expect(&log, want, 2);
    green_release(g[0]);
    green_release(g[1]);
    green_cond_free(c);
    green_lock_free(l);
}
END_TEST

START_TEST(cond_killed_waiter_skipped_by_a_release_still_gets_the_lock)
{
    green_cond_t *c = green_cond_new();
    green_lock_t *l = green_lock_new(0);
    struct cond_waiter w = {c, l, NULL, 0, -1, -2, 0, 0, 0};
    green_t *g = green_spawn(cond_waiter, &w);
    green_yield();
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    ck_assert_int_eq(green_cond_signal(c), 0);
    green_yield(); /* it now waits for the lock */
    /* Woken by the kill, then the lock is released before it resumes:
       the hand-off skips it, the lock is free, and it takes it. */
    ck_assert_int_eq(green_kill(g, 0), 0);
    ck_assert_int_eq(green_lock_release(l), 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(w.rc, 0);
    ck_assert_int_eq(w.held_after, 1);
    green_release(g);
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    ck_assert_int_eq(green_lock_release(l), 0);
    green_cond_free(c);
    green_lock_free(l);
}
END_TEST

START_TEST(cond_free_wakes_waiters_with_eidrm_lock_held)
{
    green_cond_t *c = green_cond_new();
    green_lock_t *l = green_lock_new(0);
    struct cond_waiter w = {c, l, NULL, 0, -1, -2, 0, 0, 0};
    green_t *g = green_spawn(cond_waiter, &w);
    green_yield();
    green_cond_free(c);
    join_expect_failure(g, &w.rc, &w.err, EIDRM);
    ck_assert_int_eq(w.held_after, 1);
    green_release(g);
    green_lock_free(l);
}
END_TEST

struct cond_pair {
    green_cond_t *c;
    green_lock_t *l;
};

static void cond_hub_ops(void *arg)
{
    struct cond_pair *p = arg;
    ck_assert_int_eq(green_lock_acquire(p->l, 0), 0);
    GREEN_ASSERT_ERRNO(green_cond_wait(p->c, p->l, -1), EDEADLK);
    /* Not released by the failed wait. */
    ck_assert_int_eq(green_lock_release(p->l), 0);
    ck_assert_int_eq(green_cond_signal(p->c), 0);
    ck_assert_int_eq(green_cond_broadcast(p->c), 0);
}

static void *cond_cross_thread(void *arg)
{
    struct cond_pair *p = arg;
    THREAD_EXPECT_ERRNO(green_cond_wait(p->c, p->l, 0), EXDEV);
    THREAD_EXPECT_ERRNO(green_cond_signal(p->c), EXDEV);
    THREAD_EXPECT_ERRNO(green_cond_broadcast(p->c), EXDEV);
    return NULL;
}

START_TEST(cond_bad_arguments_hub_and_threads)
{
    green_cond_t *c = green_cond_new();
    green_lock_t *l = green_lock_new(0);
    GREEN_ASSERT_ERRNO(green_cond_wait(NULL, l, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_cond_wait(c, NULL, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_cond_signal(NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_cond_broadcast(NULL), EINVAL);
    green_cond_free(NULL);
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    GREEN_ASSERT_ERRNO(green_cond_wait(c, l, NAN), EINVAL);
    ck_assert_int_eq(green_lock_release(l), 0);
    struct cond_pair p = {c, l};
    run_in_hub(cond_hub_ops, &p);
    run_in_thread(cond_cross_thread, &p);
    /* Nothing else alive: the wait itself is EDEADLK, the lock is
       back in the caller's hands. */
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    GREEN_ASSERT_ERRNO(green_cond_wait(c, l, -1), EDEADLK);
    ck_assert_int_eq(green_lock_release(l), 0);
    green_cond_free(c);
    green_lock_free(l);
}
END_TEST

static void *cond_wait_when_killed(void *arg)
{
    struct cond_waiter *w = arg;
    green_lock_acquire(w->l, -1);
    green_yield(); /* killed here (runnable: the flag is sticky) */
    errno = 0;
    w->rc = green_cond_wait(w->c, w->l, -1);
    w->err = errno;
    w->held_after = green_lock_release(w->l) == 0;
    return NULL;
}

START_TEST(cond_wait_by_a_killed_greenlet_keeps_the_lock)
{
    green_cond_t *c = green_cond_new();
    green_lock_t *l = green_lock_new(0);
    struct cond_waiter w = {c, l, NULL, 0, -1, -2, 0, 0, 0};
    green_t *g = green_spawn(cond_wait_when_killed, &w);
    green_yield();
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_int_eq(w.rc, -1);
    ck_assert_int_eq(w.err, ECANCELED);
    ck_assert_int_eq(w.held_after, 1);
    green_release(g);
    green_cond_free(c);
    green_lock_free(l);
}
END_TEST

/******************************************************************************/
/*  Shutdown                                                                  */
/******************************************************************************/

START_TEST(objects_freed_after_shutdown_with_parked_waiters)
{
    green_event_t *e = green_event_new();
    green_sem_t *s = green_sem_new(0, 0);
    green_lock_t *l = green_lock_new(0);
    green_cond_t *c = green_cond_new();
    struct ev_waiter ew = {e, NULL, 0, -1, -2, 0};
    struct sem_waiter sw = {s, NULL, 0, -1, -2, 0};
    struct cond_waiter cw = {c, l, NULL, 0, -1, -2, 0, 0, 0};
    green_t *g[3] = {green_spawn(event_waiter, &ew),
                     green_spawn(sem_waiter, &sw),
                     green_spawn(cond_waiter, &cw)};
    green_yield();
    /* The cond waiter now waits to re-acquire the lock main holds. */
    ck_assert_int_eq(green_lock_acquire(l, 0), 0);
    ck_assert_int_eq(green_cond_signal(c), 0);
    green_yield();
    ck_assert_int_eq(green_done(g[2]), 0);
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
    /* Shutdown discards the parked greenlets and unlinks their waiters,
       so the objects can still be freed (Valgrind checks the rest). */
    green_shutdown();
    green_event_free(e);
    green_sem_free(s);
    green_lock_free(l);
    green_cond_free(c);
}
END_TEST

/******************************************************************************/

/* Issue 11 item 1: the lock is freed (nobody holds it) while a
   condition wait is parked: EBADF, and the lock is never touched again
   (ASan would report the use after free). */
static void *cond_wait_keep_result(void *arg)
{
    struct cond_waiter *w = arg;
    if (green_lock_acquire(w->l, -1) != 0)
        return NULL;
    errno = 0;
    w->rc = green_cond_wait(w->c, w->l, w->timeout);
    w->err = errno;
    return NULL;
}

START_TEST(cond_wait_whose_lock_is_freed_is_ebadf)
{
    green_cond_t *c = green_cond_new();
    green_lock_t *l = green_lock_new(0);
    struct cond_waiter w = {c, l, NULL, 0, -1, -2, 0, 0, 0};
    green_t *g = green_spawn(cond_wait_keep_result, &w);
    green_yield(); /* parked in the wait, l released */
    green_lock_free(l);
    join_expect_failure(g, &w.rc, &w.err, EBADF);
    green_release(g);
    /* Also when the signal came first and l went before the waiter ran. */
    l = green_lock_new(0);
    w = (struct cond_waiter){c, l, NULL, 0, -1, -2, 0, 0, 0};
    g = green_spawn(cond_wait_keep_result, &w);
    green_yield();
    ck_assert_int_eq(green_cond_signal(c), 0);
    green_lock_free(l);
    join_expect_failure(g, &w.rc, &w.err, EBADF);
    green_release(g);
    green_cond_free(c);
}
END_TEST

/* Issue 11 item 19: timeout 0 is "do not wait", allowed in the hub:
   0 when the object is ready, EAGAIN when not. */
static void zero_timeouts_in_hub(void *arg)
{
    (void)arg;
    green_event_t *e = green_event_new();
    GREEN_ASSERT_ERRNO(green_event_wait(e, 0), EAGAIN);
    green_event_set(e);
    ck_assert_int_eq(green_event_wait(e, 0), 0);
    green_event_free(e);
    green_sem_t *s = green_sem_new(1, 0);
    ck_assert_int_eq(green_sem_acquire(s, 0), 0);
    GREEN_ASSERT_ERRNO(green_sem_acquire(s, 0), EAGAIN);
    green_sem_free(s);
    green_queue_t *q = green_queue_new(1);
    void *item = NULL;
    GREEN_ASSERT_ERRNO(green_queue_get(q, &item, 0), EAGAIN);
    ck_assert_int_eq(green_queue_put(q, P(7), 0), 0);
    GREEN_ASSERT_ERRNO(green_queue_put(q, P(8), 0), EAGAIN);
    ck_assert_int_eq(green_queue_get(q, &item, 0), 0);
    ck_assert_ptr_eq(item, P(7));
    green_queue_free(q);
    green_result_t *r = green_result_new();
    GREEN_ASSERT_ERRNO(green_result_get(r, 0, &item), EAGAIN);
    ck_assert_int_eq(green_result_set(r, P(9)), 0);
    ck_assert_int_eq(green_result_get(r, 0, &item), 0);
    ck_assert_ptr_eq(item, P(9));
    green_result_free(r);
}

START_TEST(timeout_zero_in_the_hub_is_ready_or_eagain)
{
    run_in_hub(zero_timeouts_in_hub, NULL);
}
END_TEST

static Suite *sync_suite(void)
{
    Suite *s = suite_create("sync");
    TCase *tc;

#define GREEN_TCASE(name)                                                   \
    tc = tcase_create(name);                                                \
    tcase_add_checked_fixture(tc, test_alarm_setup, test_alarm_teardown);   \
    suite_add_tcase(s, tc)

    GREEN_TCASE("event");
    tcase_add_test(tc, event_wait_returns_at_once_when_set);
    tcase_add_test(tc, event_set_wakes_every_waiter_in_wait_order);
    tcase_add_test(tc, event_wait_times_out_not_early);
    tcase_add_test(tc, event_killed_and_timed_out_waiters_leave_others_woken);
    tcase_add_test(tc, event_free_wakes_waiters_with_ebadf);
    tcase_add_test(tc, event_wait_nothing_else_alive_is_edeadlk);
    tcase_add_test(tc, event_in_hub_sets_but_cannot_wait);
    tcase_add_test(tc, event_wait_by_killed_greenlet_is_ecanceled);

    GREEN_TCASE("event errors");
    tcase_add_test(tc, event_bad_arguments);
    tcase_add_test(tc, event_from_another_thread_is_exdev);

    GREEN_TCASE("result");
    tcase_add_test(tc, result_every_getter_gets_the_value_in_wait_order);
    tcase_add_test(tc, result_set_error_fails_every_getter_with_it);
    tcase_add_test(tc, result_is_set_once);
    tcase_add_test(tc, result_get_times_out_and_killed_getter_leaves_others);
    tcase_add_test(tc, result_free_wakes_getters_with_ebadf);
    tcase_add_test(tc, result_bad_arguments);

    GREEN_TCASE("semaphore");
    tcase_add_test(tc, sem_counts_units);
    tcase_add_test(tc, sem_release_wakes_waiters_in_fifo_order);
    tcase_add_test(tc, sem_killed_waiter_never_consumes_a_unit);
    tcase_add_test(tc, sem_timed_out_waiter_never_consumes_a_unit);
    tcase_add_test(tc, sem_bounded_release_past_bound_is_eoverflow);
    tcase_add_test(tc, sem_free_wakes_waiters_with_ebadf);
    tcase_add_test(tc, sem_bad_arguments_hub_and_threads);

    GREEN_TCASE("lock");
    tcase_add_test(tc, lock_release_requires_ownership);
    tcase_add_test(tc, lock_non_recursive_reacquire_is_edeadlk);
    tcase_add_test(tc, lock_recursive_counts_acquisitions);
    tcase_add_test(tc, lock_passes_to_waiters_in_fifo_order);
    tcase_add_test(tc, lock_timed_out_or_killed_waiter_leaves_it_to_the_next);
    tcase_add_test(tc, lock_held_by_a_finished_greenlet_stays_held);
    tcase_add_test(tc, lock_free_wakes_waiters_with_ebadf);
    tcase_add_test(tc, lock_bad_arguments_hub_and_threads);

    GREEN_TCASE("condition");
    tcase_add_test(tc, cond_signal_wakes_the_oldest_broadcast_all_in_order);
    tcase_add_test(tc, cond_wait_needs_the_lock);
    tcase_add_test(tc, cond_wait_timeout_returns_with_the_lock_held);
    tcase_add_test(tc, cond_wait_restores_recursive_depth);
    tcase_add_test(tc, cond_killed_waiter_gets_the_lock_back_before_returning);
    tcase_add_test(tc,
                   cond_killed_waiter_skipped_by_a_release_still_gets_the_lock);
    tcase_add_test(tc, cond_free_wakes_waiters_with_eidrm_lock_held);
    tcase_add_test(tc, cond_wait_whose_lock_is_freed_is_ebadf);
    tcase_add_test(tc, timeout_zero_in_the_hub_is_ready_or_eagain);
    tcase_add_test(tc, cond_bad_arguments_hub_and_threads);
    tcase_add_test(tc, cond_wait_by_a_killed_greenlet_keeps_the_lock);

    GREEN_TCASE("shutdown");
    tcase_add_test(tc, objects_freed_after_shutdown_with_parked_waiters);
    return s;
}

GREEN_TEST_MAIN(sync_suite)
