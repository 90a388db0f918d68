/* Pools and groups: the size is never exceeded (tracked inside the
   workers), spawners wait in FIFO order and a killed or timed-out spawner
   never takes a slot, join/kill, map in input order, imap in input order,
   imap_unordered in completion order, freeing iterators half-consumed,
   determinism, and every error path. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "synctest.h"

/* Concurrency seen by the workers (reset before every test). */
static struct {
    int cur;     /* workers inside their function now */
    int max;     /* the most seen at once */
    int started; /* workers that started */
    int ended;   /* workers that returned normally */
    int killed;  /* workers whose sleep failed with ECANCELED */
} trk;

static void setup(void)
{
    memset(&trk, 0, sizeof trk);
    test_alarm_setup();
}

/* Sleeps arg milliseconds (0: one yield) and returns arg. */
static void *tracked_sleep(void *arg)
{
    trk.started++;
    if (++trk.cur > trk.max)
        trk.max = trk.cur;
    int rc = green_sleep(I(arg) * 0.001);
    trk.cur--;
    if (rc != 0) {
        if (errno == ECANCELED)
            trk.killed++;
        green_fail(errno);
    }
    trk.ended++;
    return arg;
}

/* Fails with EIO for odd arguments, else returns arg * 10. */
static void *fail_odd(void *arg)
{
    green_yield();
    if (I(arg) % 2)
        green_fail(EIO);
    return P(I(arg) * 10);
}

static void *wait_event(void *arg)
{
    green_event_wait(arg, -1);
    return NULL;
}

static void *nothing(void *arg)
{
    (void)arg;
    return NULL;
}

/******************************************************************************/
/*  Spawn, size, join                                                         */
/******************************************************************************/

START_TEST(group_runs_everything_at_once)
{
    green_pool_t *p = green_pool_new(0);
    ck_assert_ptr_nonnull(p);
    green_t *g[20];
    for (int i = 0; i < 20; i++) {
        g[i] = green_pool_spawn(p, tracked_sleep, P(5));
        ck_assert_ptr_nonnull(g[i]);
    }
    ck_assert_uint_eq(green_pool_running(p), 20);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    ck_assert_uint_eq(green_pool_running(p), 0);
    ck_assert_int_eq(trk.max, 20);
    for (int i = 0; i < 20; i++) {
        /* The caller's reference outlives the pool's tracking. */
        ck_assert_int_eq(green_done(g[i]), 1);
        ck_assert_ptr_eq(green_value(g[i]), P(5));
        green_release(g[i]);
    }
    ck_assert_int_eq(green_pool_join(p, 0), 0);
    green_pool_free(p);
}
END_TEST

START_TEST(pool_size_is_never_exceeded)
{
    green_pool_t *p = green_pool_new(3);
    for (int i = 0; i < 30; i++) {
        green_t *g = green_pool_spawn(p, tracked_sleep, P(i % 4));
        ck_assert_ptr_nonnull(g);
        ck_assert_uint_le(green_pool_running(p), 3);
        green_release(g);
    }
    ck_assert_int_eq(green_pool_join(p, 10), 0);
    ck_assert_int_eq(trk.started, 30);
    ck_assert_int_eq(trk.ended, 30);
    ck_assert_int_eq(trk.max, 3);
    green_pool_free(p);
}
END_TEST

START_TEST(pool_spawn_waits_while_full)
{
    green_pool_t *p = green_pool_new(1);
    green_t *a = green_pool_spawn(p, tracked_sleep, P(50));
    double t0 = test_now();
    green_t *b = green_pool_spawn(p, tracked_sleep, P(0));
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    ck_assert_int_eq(green_done(a), 1);
    ck_assert_int_eq(green_done(b), 0);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    green_release(a);
    green_release(b);
    green_pool_free(p);
}
END_TEST

struct spawner {
    green_pool_t *p;
    struct log *log;
    int id;
    green_t *g;  /* what green_pool_spawn returned */
    int err;
};

static void *log_id(void *arg)
{
    struct spawner *s = arg;
    log_add(s->log, s->id);
    return NULL;
}

static void *spawner(void *arg)
{
    struct spawner *s = arg;
    errno = 0;
    s->g = green_pool_spawn(s->p, log_id, s);
    s->err = errno;
    return NULL;
}

START_TEST(pool_spawners_are_served_in_fifo_order)
{
    green_pool_t *p = green_pool_new(1);
    green_event_t *e = green_event_new();
    green_t *blocker = green_pool_spawn(p, wait_event, e);
    struct log log = {.n = 0};
    struct spawner s[4];
    green_t *g[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (struct spawner){p, &log, i + 1, NULL, 0};
        g[i] = green_spawn(spawner, &s[i]);
    }
    green_yield();
    ck_assert_int_eq(log.n, 0);
    green_event_set(e);
    ck_assert_int_eq(green_joinall(g, 4, 5), 0);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    int want[] = {1, 2, 3, 4};
    log_expect(&log, want, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_ptr_nonnull(s[i].g);
        green_release(s[i].g);
        green_release(g[i]);
    }
    green_release(blocker);
    green_event_free(e);
    green_pool_free(p);
}
END_TEST

START_TEST(pool_killed_spawner_never_takes_a_slot)
{
    green_pool_t *p = green_pool_new(1);
    green_event_t *e = green_event_new();
    green_t *blocker = green_pool_spawn(p, wait_event, e);
    struct log log = {.n = 0};
    struct spawner s[2] = {{p, &log, 1, NULL, 0}, {p, &log, 2, NULL, 0}};
    green_t *g[2] = {green_spawn(spawner, &s[0]), green_spawn(spawner, &s[1])};
    green_yield();
    /* Killed while parked; the slot frees before it resumes. */
    ck_assert_int_eq(green_kill(g[0], 0), 0);
    green_event_set(e);
    ck_assert_int_eq(green_joinall(g, 2, 5), 0);
    ck_assert_ptr_null(s[0].g);
    ck_assert_int_eq(s[0].err, ECANCELED);
    ck_assert_ptr_nonnull(s[1].g);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    int want[] = {2};
    log_expect(&log, want, 1);
    ck_assert_uint_eq(green_pool_running(p), 0);
    green_release(s[1].g);
    green_release(g[0]);
    green_release(g[1]);
    green_release(blocker);
    green_event_free(e);
    green_pool_free(p);
}
END_TEST

START_TEST(pool_spawner_granted_then_killed_still_uses_its_slot)
{
    green_pool_t *p = green_pool_new(1);
    green_event_t *e = green_event_new();
    green_t *blocker = green_pool_spawn(p, wait_event, e);
    struct log log = {.n = 0};
    struct spawner s = {p, &log, 1, NULL, 0};
    green_t *g = green_spawn(spawner, &s);
    green_yield();
    green_event_set(e);
    green_yield(); /* the blocker ends; its slot is handed to g */
    ck_assert_int_eq(green_done(blocker), 1);
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_ptr_nonnull(s.g);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    ck_assert_uint_eq(green_pool_running(p), 0);
    /* No slot leaked: the pool of 1 still runs things. */
    green_t *x = green_pool_spawn(p, tracked_sleep, P(0));
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    ck_assert_int_eq(trk.ended, 1);
    green_release(x);
    green_release(s.g);
    green_release(g);
    green_release(blocker);
    green_event_free(e);
    green_pool_free(p);
}
END_TEST

START_TEST(pool_spawn_under_green_timeout_fails_etimedout)
{
    green_pool_t *p = green_pool_new(1);
    green_event_t *e = green_event_new();
    green_t *blocker = green_pool_spawn(p, wait_event, e);
    green_timeout_t *t = green_timeout_start(0.03);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_pool_spawn(p, tracked_sleep, P(0)), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    green_timeout_cancel(t);
    green_event_set(e);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    green_t *x = green_pool_spawn(p, tracked_sleep, P(0));
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    green_release(x);
    green_release(blocker);
    green_event_free(e);
    green_pool_free(p);
}
END_TEST

static void *join_own_pool(void *arg)
{
    green_pool_t *p = arg;
    GREEN_ASSERT_ERRNO(green_pool_join(p, 1), EDEADLK);
    GREEN_ASSERT_ERRNO(green_pool_kill(p, 1), EDEADLK);
    return NULL;
}

START_TEST(pool_join_timeouts_and_deadlock)
{
    green_pool_t *p = green_pool_new(2);
    ck_assert_int_eq(green_pool_join(p, 0), 0); /* empty */
    green_t *a = green_pool_spawn(p, tracked_sleep, P(100));
    GREEN_ASSERT_ERRNO(green_pool_join(p, 0), EAGAIN);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_pool_join(p, 0.03), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    green_t *b = green_pool_spawn(p, join_own_pool, p);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    ck_assert_int_eq(green_error(b), 0);
    green_release(a);
    green_release(b);
    green_pool_free(p);
}
END_TEST

/******************************************************************************/
/*  Kill and free                                                             */
/******************************************************************************/

START_TEST(pool_kill_stops_every_member)
{
    green_pool_t *p = green_pool_new(0);
    green_t *g[5];
    for (int i = 0; i < 5; i++)
        g[i] = green_pool_spawn(p, tracked_sleep, P(10000));
    green_yield(); /* they are sleeping */
    double t0 = test_now();
    ck_assert_int_eq(green_pool_kill(p, 5), 0);
    ck_assert(test_now() - t0 < 0.5 + test_slack());
    ck_assert_uint_eq(green_pool_running(p), 0);
    ck_assert_int_eq(trk.killed, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(green_error(g[i]), ECANCELED);
        green_release(g[i]);
    }
    /* Not-yet-started members never run. */
    for (int i = 0; i < 3; i++)
        green_release(green_pool_spawn(p, tracked_sleep, P(10000)));
    ck_assert_int_eq(green_pool_kill(p, 0), 0); /* does not wait */
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    ck_assert_int_eq(trk.started, 5);
    ck_assert_int_eq(green_pool_kill(p, 5), 0); /* empty: no-op */
    green_pool_free(p);
}
END_TEST

START_TEST(pool_free_fails_waiting_spawners_and_joiners_with_ebadf)
{
    green_pool_t *p = green_pool_new(1);
    green_event_t *e = green_event_new();
    green_t *blocker = green_pool_spawn(p, wait_event, e);
    struct spawner s = {p, NULL, 1, NULL, 0};
    green_t *g = green_spawn(spawner, &s);
    green_yield();
    green_pool_free(p);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_ptr_null(s.g);
    ck_assert_int_eq(s.err, EBADF);
    /* The member keeps running and ends normally. */
    ck_assert_int_eq(green_done(blocker), 0);
    green_event_set(e);
    ck_assert_int_eq(green_join(blocker, 5), 0);
    green_yield(); /* its link frees the pool's memory */
    green_release(blocker);
    green_release(g);
    green_event_free(e);
}
END_TEST

static void *pool_joiner(void *arg)
{
    green_pool_t *p = arg;
    GREEN_ASSERT_ERRNO(green_pool_join(p, -1), EBADF);
    return NULL;
}

START_TEST(pool_free_wakes_joiners_with_ebadf)
{
    green_pool_t *p = green_pool_new(0);
    green_t *m = green_pool_spawn(p, tracked_sleep, P(20));
    green_t *j = green_spawn(pool_joiner, p);
    green_yield();
    green_pool_free(p);
    ck_assert_int_eq(green_join(j, 5), 0);
    ck_assert_int_eq(green_join(m, 5), 0);
    green_yield();
    ck_assert_int_eq(trk.ended, 1);
    green_release(m);
    green_release(j);
}
END_TEST

/******************************************************************************/
/*  map                                                                       */
/******************************************************************************/

START_TEST(map_results_come_in_input_order)
{
    green_pool_t *p = green_pool_new(2);
    void *args[6], *res[6];
    for (int i = 0; i < 6; i++)
        args[i] = P((6 - i) * 3); /* later ones finish sooner */
    ck_assert_int_eq(green_pool_map(p, tracked_sleep, args, res, 6), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_ptr_eq(res[i], args[i]);
    ck_assert_int_eq(trk.max, 2);
    ck_assert_int_eq(trk.ended, 6);
    ck_assert_uint_eq(green_pool_running(p), 0);
    ck_assert_int_eq(green_pool_map(p, tracked_sleep, NULL, NULL, 0), 0);
    green_pool_free(p);
}
END_TEST

START_TEST(map_reports_the_first_failed_worker)
{
    green_pool_t *p = green_pool_new(3);
    void *args[5], *res[5];
    for (int i = 0; i < 5; i++)
        args[i] = P(i);
    GREEN_ASSERT_ERRNO(green_pool_map(p, fail_odd, args, res, 5), EIO);
    ck_assert_ptr_eq(res[0], P(0));
    ck_assert_ptr_null(res[1]);
    ck_assert_ptr_eq(res[2], P(20));
    ck_assert_ptr_null(res[3]);
    ck_assert_ptr_eq(res[4], P(40));
    green_pool_free(p);
}
END_TEST

static void *map_then_killed(void *arg)
{
    green_pool_t *p = arg;
    void *args[3] = {P(10000), P(10000), P(10000)}, *res[3];
    GREEN_ASSERT_ERRNO(green_pool_map(p, tracked_sleep, args, res, 3),
                       ECANCELED);
    return NULL;
}

START_TEST(map_caller_killed_kills_its_workers)
{
    green_pool_t *p = green_pool_new(0);
    green_t *g = green_spawn(map_then_killed, p);
    green_sleep(0.01);
    ck_assert_int_eq(trk.cur, 3);
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_int_eq(green_error(g), ECANCELED);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    ck_assert_int_eq(trk.killed, 3);
    green_release(g);
    green_pool_free(p);
}
END_TEST

/******************************************************************************/
/*  imap and imap_unordered                                                   */
/******************************************************************************/

START_TEST(imap_yields_input_order)
{
    green_pool_t *p = green_pool_new(0);
    void *args[4] = {P(40), P(10), P(30), P(0)};
    green_imap_t *it = green_pool_imap(p, tracked_sleep, args, 4);
    ck_assert_ptr_nonnull(it);
    args[0] = P(999); /* copied: changing ours does not matter */
    int want[] = {40, 10, 30, 0};
    for (int i = 0; i < 4; i++) {
        void *v;
        ck_assert_int_eq(green_imap_next(it, &v), 0);
        ck_assert_int_eq(I(v), want[i]);
    }
    void *v;
    GREEN_ASSERT_ERRNO(green_imap_next(it, &v), ENOENT);
    GREEN_ASSERT_ERRNO(green_imap_next(it, NULL), ENOENT);
    green_imap_free(it);
    green_pool_free(p);
}
END_TEST

START_TEST(imap_unordered_yields_completion_order)
{
    green_pool_t *p = green_pool_new(0);
    void *args[4] = {P(75), P(25), P(50), P(0)};
    green_imap_t *it = green_pool_imap_unordered(p, tracked_sleep, args, 4);
    int want[] = {0, 25, 50, 75};
    struct log log = {.n = 0};
    void *v;
    while (green_imap_next(it, &v) == 0)
        log_add(&log, I(v));
    ck_assert_int_eq(errno, ENOENT);
    log_expect(&log, want, 4);
    green_imap_free(it);
    green_pool_free(p);
}
END_TEST

START_TEST(imap_keeps_at_most_size_in_flight)
{
    green_pool_t *p = green_pool_new(3);
    void *args[12];
    for (int i = 0; i < 12; i++)
        args[i] = P(i % 4);
    green_imap_t *it = green_pool_imap_unordered(p, tracked_sleep, args, 12);
    int n = 0;
    void *v;
    while (green_imap_next(it, &v) == 0)
        n++;
    ck_assert_int_eq(n, 12);
    ck_assert_int_eq(trk.max, 3);
    green_imap_free(it);
    it = green_pool_imap(p, tracked_sleep, args, 12);
    n = 0;
    while (green_imap_next(it, &v) == 0)
        ck_assert_ptr_eq(v, args[n++]);
    ck_assert_int_eq(n, 12);
    ck_assert_int_eq(trk.max, 3);
    green_imap_free(it);
    green_pool_free(p);
}
END_TEST

START_TEST(imap_failed_worker_is_reported_and_consumed)
{
    green_pool_t *p = green_pool_new(2);
    void *args[4] = {P(0), P(1), P(2), P(3)};
    green_imap_t *it = green_pool_imap(p, fail_odd, args, 4);
    void *v;
    ck_assert_int_eq(green_imap_next(it, &v), 0);
    ck_assert_ptr_eq(v, P(0));
    v = P(1);
    GREEN_ASSERT_ERRNO(green_imap_next(it, &v), EIO);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(green_imap_next(it, &v), 0);
    ck_assert_ptr_eq(v, P(20));
    GREEN_ASSERT_ERRNO(green_imap_next(it, &v), EIO);
    GREEN_ASSERT_ERRNO(green_imap_next(it, &v), ENOENT);
    green_imap_free(it);
    green_pool_free(p);
}
END_TEST

START_TEST(imap_free_half_consumed_kills_and_joins_the_rest)
{
    green_pool_t *p = green_pool_new(3);
    void *args[10];
    for (int i = 0; i < 10; i++)
        args[i] = P(i < 2 ? 0 : 10000);
    green_imap_t *it = green_pool_imap(p, tracked_sleep, args, 10);
    void *v;
    ck_assert_int_eq(green_imap_next(it, &v), 0);
    ck_assert_int_eq(green_imap_next(it, &v), 0);
    green_yield();
    ck_assert_int_eq(trk.cur, 3); /* three long ones in flight */
    double t0 = test_now();
    green_imap_free(it);
    ck_assert(test_now() - t0 < 0.5 + test_slack());
    /* Killed and joined, and no other was started. */
    ck_assert_int_eq(trk.cur, 0);
    ck_assert_int_eq(trk.killed, 3);
    ck_assert_int_eq(trk.started, 5);
    ck_assert_uint_eq(green_pool_running(p), 0);
    ck_assert_int_eq(green_pool_join(p, 0), 0);
    green_pool_free(p);
}
END_TEST

START_TEST(imap_free_unconsumed_runs_nothing)
{
    green_pool_t *p = green_pool_new(2);
    void *args[3] = {P(0), P(0), P(0)};
    green_imap_t *it = green_pool_imap_unordered(p, tracked_sleep, args, 3);
    green_imap_free(it);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    green_sleep(0.005);
    ck_assert_int_eq(trk.started, 0);
    /* Empty iterators are exhausted at once. */
    it = green_pool_imap(p, tracked_sleep, NULL, 0);
    ck_assert_ptr_nonnull(it);
    GREEN_ASSERT_ERRNO(green_imap_next(it, NULL), ENOENT);
    green_imap_free(it);
    green_pool_free(p);
}
END_TEST

static void imap_free_in_hub(void *arg)
{
    green_imap_free(arg);
}

START_TEST(imap_free_in_the_hub_kills_without_waiting)
{
    green_pool_t *p = green_pool_new(2);
    void *args[4] = {P(10000), P(10000), P(10000), P(10000)};
    green_imap_t *it = green_pool_imap(p, tracked_sleep, args, 4);
    green_yield();
    green_yield();
    ck_assert_int_eq(trk.cur, 2);
    run_in_hub(imap_free_in_hub, it);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    ck_assert_int_eq(trk.killed, 2);
    ck_assert_int_eq(trk.started, 2);
    green_sleep(0.005);
    green_pool_free(p);
}
END_TEST

struct consumer {
    green_imap_t *it;
    struct log *log;
    int id;
    int end_err;
};

static void *imap_consumer(void *arg)
{
    struct consumer *c = arg;
    void *v;
    while (green_imap_next(c->it, &v) == 0)
        log_add(c->log, c->id * 100 + I(v));
    c->end_err = errno;
    return NULL;
}

START_TEST(imap_consumers_share_results_in_fifo_order)
{
    green_pool_t *p = green_pool_new(0);
    void *args[2] = {P(5), P(1)};
    green_imap_t *it = green_pool_imap_unordered(p, tracked_sleep, args, 2);
    struct log log = {.n = 0};
    struct consumer c[3];
    green_t *g[3];
    for (int i = 0; i < 3; i++) {
        c[i] = (struct consumer){it, &log, i + 1, 0};
        g[i] = green_spawn(imap_consumer, &c[i]);
    }
    ck_assert_int_eq(green_joinall(g, 3, 5), 0);
    /* First result to the first waiter, second to the second; then
       everyone learns it is exhausted. */
    int want[] = {101, 205};
    log_expect(&log, want, 2);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(c[i].end_err, ENOENT);
        green_release(g[i]);
    }
    green_imap_free(it);
    green_pool_free(p);
}
END_TEST

START_TEST(imap_free_wakes_waiting_consumers_with_ebadf)
{
    green_pool_t *p = green_pool_new(0);
    void *args[1] = {P(10000)};
    green_imap_t *it = green_pool_imap(p, tracked_sleep, args, 1);
    struct log log = {.n = 0};
    struct consumer c = {it, &log, 1, 0};
    green_t *g = green_spawn(imap_consumer, &c);
    green_yield(); /* the feeder spawns the worker, c waits */
    green_yield(); /* the worker sleeps */
    green_imap_free(it);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(c.end_err, EBADF);
    ck_assert_int_eq(trk.killed, 1);
    green_release(g);
    green_pool_free(p);
}
END_TEST

START_TEST(imap_on_a_freed_pool_fails_the_unspawned_items)
{
    green_pool_t *p = green_pool_new(1);
    void *args[3] = {P(10), P(10), P(10)};
    green_imap_t *it = green_pool_imap(p, tracked_sleep, args, 3);
    green_yield(); /* the feeder spawns one and waits for a slot */
    green_yield(); /* that one sleeps */
    ck_assert_int_eq(trk.cur, 1);
    green_pool_free(p); /* the feeder waits for a slot: EBADF */
    void *v;
    ck_assert_int_eq(green_imap_next(it, &v), 0); /* the one in flight */
    ck_assert_ptr_eq(v, P(10));
    GREEN_ASSERT_ERRNO(green_imap_next(it, &v), EBADF);
    GREEN_ASSERT_ERRNO(green_imap_next(it, &v), EBADF);
    GREEN_ASSERT_ERRNO(green_imap_next(it, &v), ENOENT);
    green_imap_free(it);
}
END_TEST

/******************************************************************************/
/*  Determinism                                                               */
/******************************************************************************/

static void *echo_1ms(void *arg)
{
    green_sleep(0.001);
    return arg;
}

static void *yields_then_echo(void *arg)
{
    for (int i = 0; i < (I(arg) * 7) % 5; i++)
        green_yield();
    return arg;
}

static void unordered_run(green_fn fn, size_t size, struct log *log)
{
    green_pool_t *p = green_pool_new(size);
    void *args[16];
    for (int i = 0; i < 16; i++)
        args[i] = P(i);
    green_imap_t *it = green_pool_imap_unordered(p, fn, args, 16);
    void *v;
    while (green_imap_next(it, &v) == 0)
        log_add(log, I(v));
    green_imap_free(it);
    green_pool_free(p);
}

START_TEST(pool_same_program_twice_gives_the_same_sequence)
{
    struct log a = {.n = 0}, b = {.n = 0};
    unordered_run(echo_1ms, 10, &a);
    unordered_run(echo_1ms, 10, &b);
    ck_assert_int_eq(a.n, 16);
    log_expect(&b, a.v, a.n);
    struct log c = {.n = 0}, d = {.n = 0};
    unordered_run(yields_then_echo, 4, &c);
    unordered_run(yields_then_echo, 4, &d);
    ck_assert_int_eq(c.n, 16);
    log_expect(&d, c.v, c.n);
    /* Not trivially the input order: completion order differs. */
    int same = 1;
    for (int i = 0; i < 16; i++)
        same &= c.v[i] == i;
    ck_assert_int_eq(same, 0);
}
END_TEST

/******************************************************************************/
/*  Errors                                                                    */
/******************************************************************************/

struct cross {
    green_pool_t *p;
    green_imap_t *it;
};

static void *pool_cross_thread(void *arg)
{
    struct cross *x = arg;
    void *args[1] = {P(0)}, *res[1];
    THREAD_EXPECT_ERRNO(green_pool_spawn(x->p, nothing, NULL), EXDEV);
    THREAD_EXPECT_ERRNO(green_pool_join(x->p, 0), EXDEV);
    THREAD_EXPECT_ERRNO(green_pool_kill(x->p, 0), EXDEV);
    THREAD_EXPECT_ERRNO(green_pool_map(x->p, nothing, args, res, 1), EXDEV);
    THREAD_EXPECT_ERRNO(green_pool_imap(x->p, nothing, args, 1), EXDEV);
    THREAD_EXPECT_ERRNO(green_pool_imap_unordered(x->p, nothing, args, 1),
                        EXDEV);
    THREAD_EXPECT_ERRNO(green_imap_next(x->it, res), EXDEV);
    return NULL;
}

static void pool_hub_ops(void *arg)
{
    green_pool_t *p = arg; /* size 1, empty */
    void *args[1] = {P(0)}, *res[1];
    /* A free slot: spawning from a callback works, waiting does not. */
    green_t *g = green_pool_spawn(p, tracked_sleep, P(0));
    ck_assert_ptr_nonnull(g);
    green_release(g);
    GREEN_ASSERT_ERRNO(green_pool_spawn(p, tracked_sleep, P(0)), EDEADLK);
    GREEN_ASSERT_ERRNO(green_pool_join(p, -1), EDEADLK);
    GREEN_ASSERT_ERRNO(green_pool_map(p, tracked_sleep, args, res, 1),
                       EDEADLK);
}

START_TEST(pool_bad_arguments_hub_and_threads)
{
    void *args[1] = {P(0)}, *res[1];
    GREEN_ASSERT_ERRNO(green_pool_spawn(NULL, nothing, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_join(NULL, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_kill(NULL, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_map(NULL, nothing, args, res, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_imap(NULL, nothing, args, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_imap_unordered(NULL, nothing, args, 1),
                       EINVAL);
    GREEN_ASSERT_ERRNO(green_imap_next(NULL, res), EINVAL);
    ck_assert_uint_eq(green_pool_running(NULL), 0);
    green_imap_free(NULL);
    green_pool_free(NULL);
    green_pool_t *p = green_pool_new(1);
    GREEN_ASSERT_ERRNO(green_pool_spawn(p, NULL, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_join(p, NAN), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_kill(p, NAN), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_map(p, NULL, args, res, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_map(p, nothing, NULL, res, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_map(p, nothing, args, NULL, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_imap(p, NULL, args, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_imap(p, nothing, NULL, 1), EINVAL);
    run_in_hub(pool_hub_ops, p);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    struct cross x = {p, green_pool_imap(p, nothing, args, 1)};
    run_in_thread(pool_cross_thread, &x);
    ck_assert_int_eq(green_imap_next(x.it, res), 0);
    green_imap_free(x.it);
    green_pool_free(p);
}
END_TEST

static void *killed_then_spawns(void *arg)
{
    green_pool_t *p = arg;
    green_yield(); /* killed here */
    /* A free slot needs no wait: it still spawns. */
    green_t *g = green_pool_spawn(p, nothing, NULL);
    ck_assert_ptr_nonnull(g);
    green_release(g);
    /* A full pool needs a wait: ECANCELED. */
    GREEN_ASSERT_ERRNO(green_pool_spawn(p, nothing, NULL), ECANCELED);
    void *args[1] = {P(0)}, *res[1];
    GREEN_ASSERT_ERRNO(green_pool_map(p, nothing, args, res, 1), ECANCELED);
    GREEN_ASSERT_ERRNO(green_pool_join(p, -1), ECANCELED);
    return NULL;
}

START_TEST(pool_waits_of_a_killed_greenlet_are_ecanceled)
{
    green_pool_t *p = green_pool_new(1);
    green_t *g = green_spawn(killed_then_spawns, p);
    green_yield();
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    green_release(g);
    green_pool_free(p);
}
END_TEST

/******************************************************************************/
/*  free_count, wait_available, add, apply, unlink                            */
/******************************************************************************/

START_TEST(pool_free_count_and_wait_available)
{
    green_pool_t *p = green_pool_new(2);
    ck_assert_uint_eq(green_pool_free_count(p), 2);
    green_t *a = green_pool_spawn(p, tracked_sleep, P(20));
    green_t *b = green_pool_spawn(p, tracked_sleep, P(200));
    ck_assert_uint_eq(green_pool_free_count(p), 0);
    GREEN_ASSERT_ERRNO(green_pool_wait_available(p, 0), EAGAIN);
    GREEN_ASSERT_ERRNO(green_pool_wait_available(p, NAN), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_wait_available(NULL, 0), EINVAL);
    double t0 = test_now();
    ck_assert_int_eq(green_pool_wait_available(p, 5), 0);
    ck_assert(test_now() - t0 < 0.1 + test_slack());
    /* Not taken: the slot is still free for a spawn. */
    ck_assert_uint_eq(green_pool_free_count(p), 1);
    green_t *c = green_pool_spawn(p, tracked_sleep, P(0));
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(green_pool_kill(p, 5), 0);
    green_release(a);
    green_release(b);
    green_release(c);
    green_pool_t *grp = green_pool_new(0);
    ck_assert_uint_eq(green_pool_free_count(grp), SIZE_MAX);
    ck_assert_int_eq(green_pool_wait_available(grp, 0), 0);
    ck_assert_uint_eq(green_pool_free_count(NULL), 0);
    green_pool_free(grp);
    green_pool_free(p);
}
END_TEST

struct avail {
    green_pool_t *p;
    int rc, err;
};

static void *wait_avail(void *arg)
{
    struct avail *a = arg;
    errno = 0;
    a->rc = green_pool_wait_available(a->p, -1);
    a->err = errno;
    return NULL;
}

START_TEST(pool_wait_available_yields_slots_to_spawners_first)
{
    green_pool_t *p = green_pool_new(1);
    green_t *a = green_pool_spawn(p, tracked_sleep, P(10));
    struct avail w = {p, 0, 0};
    green_t *gw = green_spawn(wait_avail, &w);
    green_yield();
    /* The main greenlet parks as a spawner after the watcher: it still
       gets the slot; the watcher sees a full pool again and waits. */
    green_t *b = green_pool_spawn(p, tracked_sleep, P(30));
    ck_assert_ptr_nonnull(b);
    ck_assert(!green_done(gw));
    ck_assert_int_eq(green_join(gw, 5), 0);
    ck_assert_int_eq(w.rc, 0);
    ck_assert(green_done(b));
    green_release(a);
    green_release(b);
    green_release(gw);
    green_pool_free(p);
}
END_TEST

START_TEST(pool_free_while_waiting_available_is_ebadf)
{
    green_pool_t *p = green_pool_new(1);
    green_event_t *e = green_event_new();
    green_t *a = green_pool_spawn(p, wait_event, e);
    struct avail w = {p, 0, 0};
    green_t *gw = green_spawn(wait_avail, &w);
    green_yield();
    green_pool_free(p);
    join_expect_failure(gw, &w.rc, &w.err, EBADF);
    green_event_set(e);
    green_join(a, 5);
    green_release(a);
    green_release(gw);
    green_event_free(e);
}
END_TEST

START_TEST(pool_add_tracks_existing_greenlets)
{
    green_pool_t *p = green_pool_new(1);
    green_t *g = green_new(tracked_sleep, P(20), NULL);
    ck_assert_int_eq(green_pool_add(p, g), 0);
    ck_assert_int_eq(green_pool_add(p, g), 0); /* a member: no-op */
    ck_assert_uint_eq(green_pool_running(p), 1);
    ck_assert_int_eq(green_start(g), 0);
    /* The pool holds its own reference. */
    green_release(g);
    double t0 = test_now();
    green_t *h = green_spawn(tracked_sleep, P(10));
    ck_assert_int_eq(green_pool_add(p, h), 0); /* waited for g */
    ck_assert(test_now() - t0 >= 0.015);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    ck_assert_int_eq(trk.ended, 2);
    ck_assert_uint_eq(green_pool_running(p), 0);
    /* A done greenlet: its slot frees at once. */
    ck_assert_int_eq(green_pool_add(p, h), 0);
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    GREEN_ASSERT_ERRNO(green_pool_add(p, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_add(NULL, h), EINVAL);
    green_release(h);
    green_pool_free(p);
}
END_TEST

struct apply_ctx {
    green_pool_t *p;
    int inner_rc;
    void *inner;
};

static void *applies_inside(void *arg)
{
    struct apply_ctx *c = arg;
    /* A member of a full pool: runs inline instead of deadlocking. */
    c->inner_rc = green_pool_apply(c->p, fail_odd, P(4), &c->inner);
    return P(1);
}

START_TEST(pool_apply_runs_and_waits)
{
    green_pool_t *p = green_pool_new(1);
    void *v = NULL;
    ck_assert_int_eq(green_pool_apply(p, fail_odd, P(2), &v), 0);
    ck_assert_int_eq(I(v), 20);
    GREEN_ASSERT_ERRNO(green_pool_apply(p, fail_odd, P(3), &v), EIO);
    ck_assert_ptr_null(v);
    struct apply_ctx c = {p, -2, NULL};
    ck_assert_int_eq(green_pool_apply(p, applies_inside, &c, NULL), 0);
    ck_assert_int_eq(c.inner_rc, 0);
    ck_assert_int_eq(I(c.inner), 40);
    GREEN_ASSERT_ERRNO(green_pool_apply(p, NULL, NULL, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_apply(NULL, fail_odd, NULL, NULL), EINVAL);
    green_pool_free(p);
}
END_TEST

struct applier {
    green_pool_t *p;
    int rc, err;
};

static void *apply_long(void *arg)
{
    struct applier *a = arg;
    errno = 0;
    a->rc = green_pool_apply(a->p, tracked_sleep, P(30), NULL);
    a->err = errno;
    return P(green_killed());
}

START_TEST(pool_apply_caller_killed_leaves_the_worker)
{
    green_pool_t *p = green_pool_new(1);
    struct applier a = {p, 0, 0};
    green_t *g = green_spawn(apply_long, &a);
    green_yield();
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_int_eq(a.rc, -1);
    ck_assert_int_eq(a.err, ECANCELED);
    ck_assert_int_eq(I(green_value(g)), 1); /* the caller was killed */
    ck_assert_int_eq(green_pool_join(p, 5), 0);
    ck_assert_int_eq(trk.ended, 1); /* the worker was not */
    green_release(g);
    green_pool_free(p);
}
END_TEST

static int link_hits;

static void count_link(green_t *g, void *arg)
{
    (void)g;
    link_hits += I(arg);
}

START_TEST(unlink_removes_a_pending_link)
{
    link_hits = 0;
    green_t *g = green_spawn(nothing, NULL);
    ck_assert_int_eq(green_link(g, count_link, P(1)), 0);
    ck_assert_int_eq(green_link(g, count_link, P(10)), 0);
    ck_assert_int_eq(green_link(g, count_link, P(100)), 0);
    ck_assert_int_eq(green_unlink(g, count_link, P(10)), 0);
    ck_assert_int_eq(green_unlink(g, count_link, P(100)), 0);
    GREEN_ASSERT_ERRNO(green_unlink(g, count_link, P(10)), ENOENT);
    ck_assert_int_eq(green_link(g, count_link, P(1000)), 0);
    GREEN_ASSERT_ERRNO(green_unlink(NULL, count_link, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_unlink(g, NULL, NULL), EINVAL);
    ck_assert_int_eq(green_join(g, 5), 0);
    green_sleep(0.01);
    ck_assert_int_eq(link_hits, 1001);
    GREEN_ASSERT_ERRNO(green_unlink(g, count_link, P(1)), ENOENT);
    green_release(g);
}
END_TEST

/******************************************************************************/
/*  imap from a source: lazy input, maxsize, indexes, stop                    */
/******************************************************************************/

struct counter {
    int calls;
    int limit;   /* < 0: endless */
};

/* Produces 0, 1, 2, ... (limit of them, or forever). */
static int count_source(void *ctx, void **arg)
{
    struct counter *c = ctx;
    if (c->limit >= 0 && c->calls >= c->limit)
        return 0;
    *arg = P(c->calls++);
    return 1;
}

START_TEST(imap_source_is_lazy_and_stops_without_killing)
{
    green_pool_t *p = green_pool_new(2);
    struct counter c = {0, -1};
    green_imap_t *it = green_pool_imap_source(p, tracked_sleep, count_source,
                                              &c, 1, 0);
    ck_assert_ptr_nonnull(it);
    for (int i = 0; i < 5; i++) {
        void *v;
        size_t idx = 99;
        int werr = -1;
        ck_assert_int_eq(green_imap_next_ex(it, &v, &idx, &werr), 0);
        ck_assert_uint_eq(idx, (size_t)i);
        ck_assert_int_eq(werr, 0);
        ck_assert_int_eq(I(v), i);
    }
    /* Lazy: never more than size + maxsize ahead of the reader. */
    ck_assert_int_le(c.calls, 5 + 2 + 1);
    ck_assert_int_eq(green_imap_stop(it), 0);
    ck_assert_int_eq(green_imap_stop(it), 0);
    int calls = c.calls, got = 0, werr;
    void *v;
    size_t idx;
    while (green_imap_next_ex(it, &v, &idx, &werr) == 0) {
        ck_assert_uint_eq(idx, (size_t)(5 + got));
        ck_assert_int_eq(werr, 0); /* finished, not killed */
        got++;
    }
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(c.calls, calls);
    ck_assert_int_eq(5 + got, calls);
    ck_assert_int_eq(trk.killed, 0);
    green_imap_free(it);
    green_pool_free(p);
}
END_TEST

START_TEST(imap_source_maxsize_bounds_unconsumed_results)
{
    green_pool_t *g = green_pool_new(0);
    struct counter c = {0, -1};
    green_imap_t *it = green_pool_imap_source(g, tracked_sleep, count_source,
                                              &c, 3, GREEN_IMAP_UNORDERED);
    ck_assert_ptr_nonnull(it);
    for (int i = 0; i < 1000 && trk.ended < 3; i++)
        ck_assert_int_eq(green_sleep(0.005), 0);
    ck_assert_int_eq(trk.ended, 3);
    ck_assert_int_eq(green_sleep(0.02), 0);
    ck_assert_int_eq(c.calls, 3); /* the reader took nothing yet */
    void *v;
    ck_assert_int_eq(green_imap_next(it, &v), 0);
    for (int i = 0; i < 1000 && c.calls < 4; i++)
        ck_assert_int_eq(green_sleep(0.005), 0);
    ck_assert_int_eq(green_sleep(0.02), 0);
    ck_assert_int_eq(c.calls, 4);
    green_imap_free(it);
    green_pool_free(g);
}
END_TEST

START_TEST(imap_source_tells_failed_workers_from_the_caller)
{
    green_pool_t *p = green_pool_new(2);
    struct counter c = {0, 4};
    green_imap_t *it = green_pool_imap_source(p, fail_odd, count_source, &c,
                                              0, 0);
    int want_err[] = {0, EIO, 0, EIO};
    for (int i = 0; i < 4; i++) {
        void *v = P(-1);
        size_t idx;
        int werr;
        ck_assert_int_eq(green_imap_next_ex(it, &v, &idx, &werr), 0);
        ck_assert_uint_eq(idx, (size_t)i);
        ck_assert_int_eq(werr, want_err[i]);
        if (werr)
            ck_assert_ptr_null(v);
        else
            ck_assert_int_eq(I(v), i * 10);
    }
    GREEN_ASSERT_ERRNO(green_imap_next_ex(it, NULL, NULL, NULL), ENOENT);
    green_imap_free(it);
    GREEN_ASSERT_ERRNO(green_pool_imap_source(p, fail_odd, NULL, NULL, 0, 0),
                       EINVAL);
    GREEN_ASSERT_ERRNO(green_pool_imap_source(p, fail_odd, count_source, &c,
                                              0, 0x100),
                       EINVAL);
    GREEN_ASSERT_ERRNO(green_imap_stop(NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_imap_next_ex(NULL, NULL, NULL, NULL), EINVAL);
    green_pool_free(p);
}
END_TEST

struct src_consumer {
    green_imap_t *it;
    int rc, err;
};

static void *sleep_20ms(void *arg)
{
    green_sleep(0.02);
    return arg;
}

static void *consume_one(void *arg)
{
    struct src_consumer *c = arg;
    int werr;
    errno = 0;
    c->rc = green_imap_next_ex(c->it, NULL, NULL, &werr);
    c->err = errno;
    return NULL;
}

START_TEST(imap_killed_consumer_is_an_error_of_the_call)
{
    green_pool_t *p = green_pool_new(1);
    struct counter c = {0, 2};
    green_imap_t *it = green_pool_imap_source(p, sleep_20ms, count_source,
                                              &c, 0, 0);
    /* The consumer is killed while the first worker sleeps. */
    struct src_consumer k = {it, 0, 0};
    green_t *g = green_spawn(consume_one, &k);
    green_yield();
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_int_eq(k.rc, -1);
    ck_assert_int_eq(k.err, ECANCELED);
    /* Nothing consumed: both results still come. */
    void *v;
    size_t idx;
    ck_assert_int_eq(green_imap_next_ex(it, &v, &idx, NULL), 0);
    ck_assert_uint_eq(idx, 0);
    ck_assert_int_eq(green_imap_next_ex(it, &v, &idx, NULL), 0);
    ck_assert_uint_eq(idx, 1);
    green_release(g);
    green_imap_free(it);
    green_pool_free(p);
}
END_TEST

/******************************************************************************/

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc;

#define GREEN_TCASE(name)                                                   \
    tc = tcase_create(name);                                                \
    tcase_add_checked_fixture(tc, setup, test_alarm_teardown);              \
    suite_add_tcase(s, tc)

    GREEN_TCASE("spawn");
    tcase_add_test(tc, group_runs_everything_at_once);
    tcase_add_test(tc, pool_size_is_never_exceeded);
    tcase_add_test(tc, pool_spawn_waits_while_full);
    tcase_add_test(tc, pool_spawners_are_served_in_fifo_order);
    tcase_add_test(tc, pool_killed_spawner_never_takes_a_slot);
    tcase_add_test(tc, pool_spawner_granted_then_killed_still_uses_its_slot);
    tcase_add_test(tc, pool_spawn_under_green_timeout_fails_etimedout);
    tcase_add_test(tc, pool_join_timeouts_and_deadlock);

    GREEN_TCASE("kill and free");
    tcase_add_test(tc, pool_kill_stops_every_member);
    tcase_add_test(tc, pool_free_fails_waiting_spawners_and_joiners_with_ebadf);
    tcase_add_test(tc, pool_free_wakes_joiners_with_ebadf);

    GREEN_TCASE("map");
    tcase_add_test(tc, map_results_come_in_input_order);
    tcase_add_test(tc, map_reports_the_first_failed_worker);
    tcase_add_test(tc, map_caller_killed_kills_its_workers);

    GREEN_TCASE("imap");
    tcase_add_test(tc, imap_yields_input_order);
    tcase_add_test(tc, imap_unordered_yields_completion_order);
    tcase_add_test(tc, imap_keeps_at_most_size_in_flight);
    tcase_add_test(tc, imap_failed_worker_is_reported_and_consumed);
    tcase_add_test(tc, imap_free_half_consumed_kills_and_joins_the_rest);
    tcase_add_test(tc, imap_free_unconsumed_runs_nothing);
    tcase_add_test(tc, imap_free_in_the_hub_kills_without_waiting);
    tcase_add_test(tc, imap_consumers_share_results_in_fifo_order);
    tcase_add_test(tc, imap_free_wakes_waiting_consumers_with_ebadf);
    tcase_add_test(tc, imap_on_a_freed_pool_fails_the_unspawned_items);

    GREEN_TCASE("gevent extras");
    tcase_add_test(tc, pool_free_count_and_wait_available);
    tcase_add_test(tc, pool_wait_available_yields_slots_to_spawners_first);
    tcase_add_test(tc, pool_free_while_waiting_available_is_ebadf);
    tcase_add_test(tc, pool_add_tracks_existing_greenlets);
    tcase_add_test(tc, pool_apply_runs_and_waits);
    tcase_add_test(tc, pool_apply_caller_killed_leaves_the_worker);
    tcase_add_test(tc, unlink_removes_a_pending_link);

    GREEN_TCASE("imap source");
    tcase_add_test(tc, imap_source_is_lazy_and_stops_without_killing);
    tcase_add_test(tc, imap_source_maxsize_bounds_unconsumed_results);
    tcase_add_test(tc, imap_source_tells_failed_workers_from_the_caller);
    tcase_add_test(tc, imap_killed_consumer_is_an_error_of_the_call);

    GREEN_TCASE("determinism");
    tcase_add_test(tc, pool_same_program_twice_gives_the_same_sequence);

    GREEN_TCASE("errors");
    tcase_add_test(tc, pool_bad_arguments_hub_and_threads);
    tcase_add_test(tc, pool_waits_of_a_killed_greenlet_are_ecanceled);
    return s;
}

GREEN_TEST_MAIN(pool_suite)
