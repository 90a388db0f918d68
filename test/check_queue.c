/* Queues, JoinableQueue and channels: FIFO order of items and of waiters,
   timeouts and kills while waiting (nothing lost, nothing duplicated, the
   next waiter still served), channel hand-off, close, and every error. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "synctest.h"

/* A greenlet doing one put or get. */
struct op {
    green_queue_t *q;
    struct log *log;
    int id;
    double timeout;
    void *item;   /* to put, or what get returned */
    int rc, err;
};

static void *getter(void *arg)
{
    struct op *o = arg;
    errno = 0;
    o->item = P(-1);
    o->rc = green_queue_get(o->q, &o->item, o->timeout);
    o->err = errno;
    if (o->log && o->rc == 0)
        log_add(o->log, o->id * 1000 + I(o->item));
    return NULL;
}

static void *putter(void *arg)
{
    struct op *o = arg;
    errno = 0;
    o->rc = green_queue_put(o->q, o->item, o->timeout);
    o->err = errno;
    if (o->log && o->rc == 0)
        log_add(o->log, o->id);
    return NULL;
}

/******************************************************************************/
/*  Basic FIFO                                                                */
/******************************************************************************/

START_TEST(queue_items_come_out_in_put_order)
{
    green_queue_t *q = green_queue_new(0);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(green_queue_size(q), 0);
    /* Unbounded: grows past its first allocation, wrapping around. */
    int next_out = 0;
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(green_queue_put(q, P(i), 0), 0);
        if (i % 3 == 2) {
            void *v;
            ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
            ck_assert_int_eq(I(v), next_out++);
        }
    }
    ck_assert_uint_eq(green_queue_size(q), 1000 - next_out);
    while (next_out < 1000) {
        void *v;
        ck_assert_int_eq(green_queue_get(q, &v, -1), 0);
        ck_assert_int_eq(I(v), next_out++);
    }
    ck_assert_uint_eq(green_queue_size(q), 0);
    void *v;
    GREEN_ASSERT_ERRNO(green_queue_get(q, &v, 0), EAGAIN);
    green_queue_free(q);
}
END_TEST

START_TEST(queue_bounded_holds_capacity_items)
{
    green_queue_t *q = green_queue_new(3);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(green_queue_put(q, P(round * 10 + i), 0), 0);
        GREEN_ASSERT_ERRNO(green_queue_put(q, P(99), 0), EAGAIN);
        ck_assert_uint_eq(green_queue_size(q), 3);
        void *v;
        ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
        ck_assert_int_eq(I(v), round * 10);
        ck_assert_int_eq(green_queue_put(q, P(round * 10 + 3), 0), 0);
        for (int i = 1; i < 4; i++) {
            ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
            ck_assert_int_eq(I(v), round * 10 + i);
        }
    }
    double t0 = test_now();
    for (int i = 0; i < 3; i++)
        green_queue_put(q, P(i), 0);
    GREEN_ASSERT_ERRNO(green_queue_put(q, P(9), 0.03), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    green_queue_free(q); /* drops the items */
}
END_TEST

START_TEST(queue_get_times_out_not_early)
{
    green_queue_t *q = green_queue_new(0);
    void *v;
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_queue_get(q, &v, 0.03), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    green_queue_free(q);
}
END_TEST

/******************************************************************************/
/*  Waiters                                                                   */
/******************************************************************************/

START_TEST(queue_getters_are_served_in_wait_order)
{
    green_queue_t *q = green_queue_new(0);
    struct log log = {.n = 0};
    struct op o[4];
    green_t *g[4];
    for (int i = 0; i < 4; i++) {
        o[i] = (struct op){q, &log, i + 1, -1, NULL, -2, 0};
        g[i] = green_spawn(getter, &o[i]);
    }
    green_yield();
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(green_queue_put(q, P(i), 0), 0);
    /* Handed over, never queued. */
    ck_assert_uint_eq(green_queue_size(q), 0);
    ck_assert_int_eq(green_joinall(g, 4, 5), 0);
    int want[] = {1000, 2001, 3002, 4003};
    log_expect(&log, want, 4);
    for (int i = 0; i < 4; i++)
        green_release(g[i]);
    green_queue_free(q);
}
END_TEST

START_TEST(queue_putters_wait_while_full_and_keep_their_order)
{
    green_queue_t *q = green_queue_new(1);
    ck_assert_int_eq(green_queue_put(q, P(0), 0), 0);
    struct log log = {.n = 0};
    struct op o[3];
    green_t *g[3];
    for (int i = 0; i < 3; i++) {
        o[i] = (struct op){q, &log, i + 1, -1, P(i + 1), -2, 0};
        g[i] = green_spawn(putter, &o[i]);
    }
    green_yield();
    ck_assert_int_eq(log.n, 0);
    ck_assert_uint_eq(green_queue_size(q), 1);
    for (int i = 0; i <= 3; i++) {
        void *v;
        ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
        ck_assert_int_eq(I(v), i);
        /* The oldest putter's item moved in at once. */
        ck_assert_uint_eq(green_queue_size(q), i < 3 ? 1 : 0);
    }
    ck_assert_int_eq(green_joinall(g, 3, 5), 0);
    int want[] = {1, 2, 3};
    log_expect(&log, want, 3);
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
    green_queue_free(q);
}
END_TEST

START_TEST(queue_killed_or_timed_out_getter_never_takes_an_item)
{
    green_queue_t *q = green_queue_new(0);
    struct log log = {.n = 0};
    struct op o[3] = {{q, &log, 1, 0.02, NULL, -2, 0},
                      {q, &log, 2, -1, NULL, -2, 0},
                      {q, &log, 3, -1, NULL, -2, 0}};
    green_t *g[3];
    for (int i = 0; i < 3; i++)
        g[i] = green_spawn(getter, &o[i]);
    ck_assert_int_eq(green_join(g[0], 5), 0);
    ck_assert_int_eq(o[0].err, ETIMEDOUT);
    /* Killed and not yet resumed when the item arrives: it skips it. */
    ck_assert_int_eq(green_kill(g[1], 0), 0);
    ck_assert_int_eq(green_queue_put(q, P(7), 0), 0);
    ck_assert_int_eq(green_joinall(g, 3, 5), 0);
    ck_assert_int_eq(o[1].rc, -1);
    ck_assert_int_eq(o[1].err, ECANCELED);
    ck_assert_int_eq(o[2].rc, 0);
    int want[] = {3007};
    log_expect(&log, want, 1);
    ck_assert_uint_eq(green_queue_size(q), 0);
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
    green_queue_free(q);
}
END_TEST

START_TEST(queue_killed_or_timed_out_putter_keeps_its_item)
{
    green_queue_t *q = green_queue_new(1);
    ck_assert_int_eq(green_queue_put(q, P(0), 0), 0);
    struct log log = {.n = 0};
    struct op o[3] = {{q, &log, 1, 0.02, P(1), -2, 0},
                      {q, &log, 2, -1, P(2), -2, 0},
                      {q, &log, 3, -1, P(3), -2, 0}};
    green_t *g[3];
    for (int i = 0; i < 3; i++)
        g[i] = green_spawn(putter, &o[i]);
    ck_assert_int_eq(green_join(g[0], 5), 0);
    ck_assert_int_eq(o[0].err, ETIMEDOUT);
    ck_assert_int_eq(green_kill(g[1], 0), 0);
    void *v;
    ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
    ck_assert_int_eq(I(v), 0);
    ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
    ck_assert_int_eq(I(v), 3); /* neither 1 nor 2 */
    GREEN_ASSERT_ERRNO(green_queue_get(q, &v, 0), EAGAIN);
    ck_assert_int_eq(green_joinall(g, 3, 5), 0);
    ck_assert_int_eq(o[1].err, ECANCELED);
    ck_assert_int_eq(o[2].rc, 0);
    int want[] = {3};
    log_expect(&log, want, 1);
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
    green_queue_free(q);
}
END_TEST

START_TEST(queue_free_after_hand_over_is_safe)
{
    green_queue_t *q = green_queue_new(0);
    struct op o = {q, NULL, 1, -1, NULL, -2, 0};
    green_t *g = green_spawn(getter, &o);
    green_yield();
    ck_assert_int_eq(green_queue_put(q, P(5), 0), 0);
    green_queue_free(q); /* before the getter resumes */
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_int_eq(I(o.item), 5);
    green_release(g);
}
END_TEST

START_TEST(queue_free_wakes_every_waiter_with_ebadf)
{
    green_queue_t *full = green_queue_new(1);
    green_queue_t *empty = green_queue_new(0);
    green_queue_put(full, P(0), 0);
    struct op o[2] = {{full, NULL, 1, -1, P(1), -2, 0},
                      {empty, NULL, 2, -1, NULL, -2, 0}};
    green_t *g[2] = {green_spawn(putter, &o[0]), green_spawn(getter, &o[1])};
    green_yield();
    green_queue_free(full);
    green_queue_free(empty);
    ck_assert_int_eq(green_joinall(g, 2, 5), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(o[i].rc, -1);
        ck_assert_int_eq(o[i].err, EBADF);
        green_release(g[i]);
    }
}
END_TEST

/******************************************************************************/
/*  Channel                                                                   */
/******************************************************************************/

START_TEST(channel_put_completes_only_when_a_getter_takes_it)
{
    green_queue_t *c = green_channel_new();
    ck_assert_ptr_nonnull(c);
    GREEN_ASSERT_ERRNO(green_queue_put(c, P(1), 0), EAGAIN);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_queue_put(c, P(1), 0.03), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    void *v;
    GREEN_ASSERT_ERRNO(green_queue_get(c, &v, 0), EAGAIN);

    struct log log = {.n = 0};
    struct op p = {c, &log, 1, -1, P(42), -2, 0};
    green_t *g = green_spawn(putter, &p);
    green_yield();
    green_yield();
    ck_assert_int_eq(log.n, 0); /* still waiting for a getter */
    ck_assert_uint_eq(green_queue_size(c), 0);
    ck_assert_int_eq(green_queue_get(c, &v, 0), 0);
    ck_assert_int_eq(I(v), 42);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(p.rc, 0);
    green_release(g);

    /* A waiting getter makes a put with timeout 0 succeed. */
    struct op r = {c, &log, 2, -1, NULL, -2, 0};
    g = green_spawn(getter, &r);
    green_yield();
    ck_assert_int_eq(green_queue_put(c, P(9), 0), 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(I(r.item), 9);
    green_release(g);
    int want[] = {1, 2009};
    log_expect(&log, want, 2);
    green_queue_free(c);
}
END_TEST

struct pingpong {
    green_queue_t *c;
    struct log *log;
};

static void *channel_receiver(void *arg)
{
    struct pingpong *pp = arg;
    void *v;
    while (green_queue_get(pp->c, &v, -1) == 0) {
        log_add(pp->log, 100 + I(v));
        green_yield();
    }
    log_add(pp->log, errno == EPIPE ? -1 : -2);
    return NULL;
}

START_TEST(channel_hand_off_interleaves_sender_and_receiver)
{
    green_queue_t *c = green_channel_new();
    struct log log = {.n = 0};
    struct pingpong pp = {c, &log};
    green_t *g = green_spawn(channel_receiver, &pp);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(green_queue_put(c, P(i), -1), 0);
        log_add(&log, i);
    }
    ck_assert_int_eq(green_queue_close(c), 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    /* Each put returns only after the receiver took the item. */
    int want[] = {100, 0, 101, 1, 102, 2, -1};
    log_expect(&log, want, 7);
    green_release(g);
    green_queue_free(c);
}
END_TEST

START_TEST(channel_putters_are_served_in_wait_order)
{
    green_queue_t *c = green_channel_new();
    struct log log = {.n = 0};
    struct op o[3];
    green_t *g[3];
    for (int i = 0; i < 3; i++) {
        o[i] = (struct op){c, &log, i + 1, -1, P(i + 1), -2, 0};
        g[i] = green_spawn(putter, &o[i]);
    }
    green_yield();
    ck_assert_int_eq(green_kill(g[0], 0), 0); /* leaves with its item */
    for (int i = 2; i <= 3; i++) {
        void *v;
        ck_assert_int_eq(green_queue_get(c, &v, 0), 0);
        ck_assert_int_eq(I(v), i);
    }
    void *v;
    GREEN_ASSERT_ERRNO(green_queue_get(c, &v, 0), EAGAIN);
    ck_assert_int_eq(green_joinall(g, 3, 5), 0);
    ck_assert_int_eq(o[0].err, ECANCELED);
    int want[] = {2, 3};
    log_expect(&log, want, 2);
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
    green_queue_free(c);
}
END_TEST

/******************************************************************************/
/*  Close                                                                     */
/******************************************************************************/

START_TEST(queue_close_drains_then_fails_with_epipe)
{
    green_queue_t *q = green_queue_new(0);
    green_queue_put(q, P(1), 0);
    green_queue_put(q, P(2), 0);
    ck_assert_int_eq(green_queue_close(q), 0);
    ck_assert_int_eq(green_queue_close(q), 0); /* idempotent */
    GREEN_ASSERT_ERRNO(green_queue_put(q, P(3), 0), EPIPE);
    GREEN_ASSERT_ERRNO(green_queue_put(q, P(3), -1), EPIPE);
    void *v;
    ck_assert_int_eq(green_queue_get(q, &v, -1), 0);
    ck_assert_int_eq(I(v), 1);
    ck_assert_int_eq(green_queue_get(q, &v, -1), 0);
    ck_assert_int_eq(I(v), 2);
    GREEN_ASSERT_ERRNO(green_queue_get(q, &v, -1), EPIPE);
    GREEN_ASSERT_ERRNO(green_queue_get(q, &v, 0), EPIPE);
    green_queue_free(q);
}
END_TEST

START_TEST(queue_close_wakes_waiting_getters_and_putters)
{
    green_queue_t *empty = green_queue_new(0);
    green_queue_t *full = green_queue_new(1);
    green_queue_put(full, P(0), 0);
    struct op o[4] = {{empty, NULL, 1, -1, NULL, -2, 0},
                      {empty, NULL, 2, -1, NULL, -2, 0},
                      {full, NULL, 3, -1, P(3), -2, 0},
                      {full, NULL, 4, -1, P(4), -2, 0}};
    green_t *g[4] = {green_spawn(getter, &o[0]), green_spawn(getter, &o[1]),
                     green_spawn(putter, &o[2]), green_spawn(putter, &o[3])};
    green_yield();
    ck_assert_int_eq(green_queue_close(empty), 0);
    ck_assert_int_eq(green_queue_close(full), 0);
    ck_assert_int_eq(green_joinall(g, 4, 5), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(o[i].rc, -1);
        ck_assert_int_eq(o[i].err, EPIPE);
        green_release(g[i]);
    }
    /* The putters' items were not queued; the old one drains. */
    ck_assert_uint_eq(green_queue_size(full), 1);
    void *v;
    ck_assert_int_eq(green_queue_get(full, &v, 0), 0);
    ck_assert_int_eq(I(v), 0);
    GREEN_ASSERT_ERRNO(green_queue_get(full, &v, 0), EPIPE);
    green_queue_free(empty);
    green_queue_free(full);
}
END_TEST

START_TEST(channel_close_fails_waiting_putters)
{
    green_queue_t *c = green_channel_new();
    struct op o = {c, NULL, 1, -1, P(1), -2, 0};
    green_t *g = green_spawn(putter, &o);
    green_yield();
    ck_assert_int_eq(green_queue_close(c), 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(o.err, EPIPE);
    void *v;
    GREEN_ASSERT_ERRNO(green_queue_get(c, &v, 0), EPIPE);
    green_release(g);
    green_queue_free(c);
}
END_TEST

/******************************************************************************/
/*  JoinableQueue                                                             */
/******************************************************************************/

struct worker {
    green_queue_t *q;
    struct log *log;
    int done;
};

static void *task_worker(void *arg)
{
    struct worker *w = arg;
    void *v;
    while (green_queue_get(w->q, &v, -1) == 0) {
        green_sleep(0.001);
        log_add(w->log, I(v));
        w->done++;
        green_queue_task_done(w->q);
    }
    return NULL;
}

START_TEST(queue_join_waits_for_every_task_done)
{
    green_queue_t *q = green_queue_new(2);
    ck_assert_int_eq(green_queue_join(q, 0), 0); /* nothing unfinished */
    GREEN_ASSERT_ERRNO(green_queue_task_done(q), EINVAL);
    struct log log = {.n = 0};
    struct worker w = {q, &log, 0};
    green_t *g = green_spawn(task_worker, &w);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(green_queue_put(q, P(i), -1), 0);
    GREEN_ASSERT_ERRNO(green_queue_join(q, 0), EAGAIN);
    ck_assert_int_eq(green_queue_join(q, 5), 0);
    ck_assert_int_eq(w.done, 6);
    int want[] = {0, 1, 2, 3, 4, 5};
    log_expect(&log, want, 6);
    GREEN_ASSERT_ERRNO(green_queue_task_done(q), EINVAL);
    ck_assert_int_eq(green_queue_close(q), 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    green_release(g);
    green_queue_free(q);
}
END_TEST

START_TEST(queue_join_times_out_and_counts_handed_items)
{
    green_queue_t *q = green_queue_new(0);
    green_queue_put(q, P(1), 0);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_queue_join(q, 0.03), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    void *v;
    green_queue_get(q, &v, 0);
    GREEN_ASSERT_ERRNO(green_queue_join(q, 0), EAGAIN); /* got, not done */
    ck_assert_int_eq(green_queue_task_done(q), 0);
    ck_assert_int_eq(green_queue_join(q, 0), 0);
    /* An item handed straight to a getter is a task too. */
    struct op o = {q, NULL, 1, -1, NULL, -2, 0};
    green_t *g = green_spawn(getter, &o);
    green_yield();
    green_queue_put(q, P(2), 0);
    GREEN_ASSERT_ERRNO(green_queue_join(q, 0), EAGAIN);
    ck_assert_int_eq(green_queue_task_done(q), 0);
    ck_assert_int_eq(green_queue_join(q, 0), 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    green_release(g);
    green_queue_free(q);
}
END_TEST

static void *queue_joiner(void *arg)
{
    struct op *o = arg;
    errno = 0;
    o->rc = green_queue_join(o->q, -1);
    o->err = errno;
    return NULL;
}

START_TEST(queue_free_wakes_joiners_with_ebadf)
{
    green_queue_t *q = green_queue_new(0);
    green_queue_put(q, P(1), 0);
    struct op o = {q, NULL, 1, -1, NULL, -2, 0};
    green_t *g = green_spawn(queue_joiner, &o);
    green_yield();
    green_queue_free(q);
    join_expect_failure(g, &o.rc, &o.err, EBADF);
    green_release(g);
}
END_TEST

/******************************************************************************/
/*  Determinism                                                               */
/******************************************************************************/

struct pc {
    green_queue_t *q;
    struct log *log;
    int id;
};

static void *pc_producer(void *arg)
{
    struct pc *p = arg;
    for (int i = 0; i < 8; i++) {
        green_queue_put(p->q, P(p->id * 10 + i), -1);
        if (i % 3 == p->id % 3)
            for (int k = 0; k <= p->id; k++)
                green_yield();
    }
    return NULL;
}

static void *pc_consumer(void *arg)
{
    struct pc *c = arg;
    void *v;
    while (green_queue_get(c->q, &v, -1) == 0) {
        log_add(c->log, c->id * 100 + I(v));
        for (int k = 0; k <= I(v) % 3; k++)
            green_yield();
    }
    return NULL;
}

/* Three producers and three consumers on a queue of 2; the log is the
   order in which consumers saw which items.  Only yields and queue waits
   (timers of different lengths would race with the real clock). */
static void pc_run(struct log *log)
{
    green_queue_t *q = green_queue_new(2);
    struct pc p[3], c[3];
    green_t *gp[3], *gc[3];
    for (int i = 0; i < 3; i++) {
        c[i] = (struct pc){q, log, i + 1};
        gc[i] = green_spawn(pc_consumer, &c[i]);
        p[i] = (struct pc){q, log, i};
        gp[i] = green_spawn(pc_producer, &p[i]);
    }
    ck_assert_int_eq(green_joinall(gp, 3, 10), 0);
    green_queue_close(q);
    ck_assert_int_eq(green_joinall(gc, 3, 10), 0);
    for (int i = 0; i < 3; i++) {
        green_release(gp[i]);
        green_release(gc[i]);
    }
    green_queue_free(q);
}

START_TEST(queue_same_program_twice_gives_the_same_sequence)
{
    struct log a = {.n = 0}, b = {.n = 0};
    pc_run(&a);
    pc_run(&b);
    ck_assert_int_eq(a.n, 24);
    log_expect(&b, a.v, a.n);
}
END_TEST

/******************************************************************************/
/*  Errors                                                                    */
/******************************************************************************/

static void queue_hub_ops(void *arg)
{
    green_queue_t *q = arg; /* unbounded, empty */
    void *v;
    /* Non-blocking operations work in a callback; waiting does not. */
    ck_assert_int_eq(green_queue_put(q, P(1), -1), 0);
    ck_assert_int_eq(green_queue_get(q, &v, -1), 0);
    GREEN_ASSERT_ERRNO(green_queue_get(q, &v, -1), EDEADLK);
    ck_assert_int_eq(green_queue_task_done(q), 0);
    ck_assert_int_eq(green_queue_put(q, P(2), 0), 0);
    GREEN_ASSERT_ERRNO(green_queue_join(q, -1), EDEADLK);
    green_queue_get(q, &v, 0);
    green_queue_task_done(q);
}

static void *queue_cross_thread(void *arg)
{
    green_queue_t *q = arg;
    void *v;
    THREAD_EXPECT_ERRNO(green_queue_put(q, P(1), 0), EXDEV);
    THREAD_EXPECT_ERRNO(green_queue_get(q, &v, 0), EXDEV);
    THREAD_EXPECT_ERRNO(green_queue_task_done(q), EXDEV);
    THREAD_EXPECT_ERRNO(green_queue_join(q, 0), EXDEV);
    THREAD_EXPECT_ERRNO(green_queue_close(q), EXDEV);
    return NULL;
}

START_TEST(queue_bad_arguments_hub_and_threads)
{
    void *v;
    GREEN_ASSERT_ERRNO(green_queue_put(NULL, P(1), 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_queue_get(NULL, &v, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_queue_task_done(NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_queue_join(NULL, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_queue_close(NULL), EINVAL);
    ck_assert_uint_eq(green_queue_size(NULL), 0);
    green_queue_free(NULL);
    green_queue_t *q = green_queue_new(0);
    GREEN_ASSERT_ERRNO(green_queue_get(q, NULL, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_queue_put(q, P(1), NAN), EINVAL);
    GREEN_ASSERT_ERRNO(green_queue_get(q, &v, NAN), EINVAL);
    GREEN_ASSERT_ERRNO(green_queue_join(q, NAN), EINVAL);
    ck_assert_uint_eq(green_queue_size(q), 0);
    run_in_hub(queue_hub_ops, q);
    ck_assert_int_eq(green_queue_join(q, 0), 0);
    run_in_thread(queue_cross_thread, q);
    /* Nothing else alive: waiting forever is EDEADLK. */
    GREEN_ASSERT_ERRNO(green_queue_get(q, &v, -1), EDEADLK);
    green_queue_free(q);
}
END_TEST

static void *get_after_yield(void *arg)
{
    green_yield(); /* killed here, while runnable */
    return getter(arg);
}

START_TEST(queue_get_by_a_killed_greenlet_is_ecanceled)
{
    green_queue_t *q = green_queue_new(0);
    struct op o = {q, NULL, 1, -1, NULL, -2, 0};
    green_t *g = green_spawn(get_after_yield, &o);
    green_yield();
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_int_eq(o.rc, -1);
    ck_assert_int_eq(o.err, ECANCELED);
    green_release(g);
    green_queue_free(q);
}
END_TEST

/******************************************************************************/
/*  LIFO, priority, peek, accessors                                           */
/******************************************************************************/

static void *put_one_item(void *q)
{
    green_queue_put(q, P(77), 5);
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    return (I(a) / 10 > I(b) / 10) - (I(a) / 10 < I(b) / 10);
}

START_TEST(lifo_queue_takes_the_newest)
{
    green_queue_t *q = green_queue_new_lifo(0);
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(green_queue_put(q, P(i), 0), 0);
    void *v;
    for (int i = 39; i >= 30; i--) {
        ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
        ck_assert_int_eq(I(v), i);
    }
    ck_assert_int_eq(green_queue_put(q, P(100), 0), 0);
    ck_assert_int_eq(green_queue_peek(q, &v, 0), 0);
    ck_assert_int_eq(I(v), 100);
    ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
    ck_assert_int_eq(I(v), 100);
    ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
    ck_assert_int_eq(I(v), 29);
    ck_assert_uint_eq(green_queue_unfinished(q), 41);
    green_queue_free(q);
}
END_TEST

START_TEST(priority_queue_orders_by_cmp_ties_fifo)
{
    GREEN_ASSERT_ERRNO(green_queue_new_priority(0, NULL), EINVAL);
    green_queue_t *q = green_queue_new_priority(0, by_value);
    /* Tens digit is the priority; units record put order. */
    int in[] = {50, 11, 30, 12, 51, 10, 31, 13, 70, 14, 15, 16, 17, 18,
                19, 52, 53, 54, 55, 56, 57, 58};
    int n = (int)(sizeof in / sizeof in[0]);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(green_queue_put(q, P(in[i]), 0), 0);
    int want[] = {11, 12, 10, 13, 14, 15, 16, 17, 18, 19, 30, 31, 50, 51,
                  52, 53, 54, 55, 56, 57, 58, 70};
    void *v;
    ck_assert_int_eq(green_queue_peek(q, &v, 0), 0);
    ck_assert_int_eq(I(v), 11);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
        ck_assert_int_eq(I(v), want[i]);
    }
    ck_assert(green_queue_empty(q));
    green_queue_free(q);
}
END_TEST

static void *put_later(void *q)
{
    green_sleep(0.01);
    green_queue_put(q, P(5), 0);
    return NULL;
}

START_TEST(peek_waits_without_taking)
{
    green_queue_t *q = green_queue_new(1);
    void *v = NULL;
    GREEN_ASSERT_ERRNO(green_queue_peek(q, &v, 0), EAGAIN);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_queue_peek(q, &v, 0.02), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.02);
    GREEN_ASSERT_ERRNO(green_queue_peek(q, NULL, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_queue_peek(NULL, &v, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_queue_peek(q, &v, NAN), EINVAL);
    /* A real getter parked too: the item goes to it, the peeker keeps
       waiting and sees the next one. */
    struct op g = {q, NULL, 1, 5, NULL, 0, 0};
    green_t *gg = green_spawn(getter, &g);
    green_t *gp = green_spawn(put_later, q);
    green_yield();
    ck_assert_int_eq(green_queue_peek(q, &v, 0.05), -1);
    ck_assert_int_eq(green_join(gg, 5), 0);
    ck_assert_int_eq(I(g.item), 5);
    ck_assert_int_eq(green_queue_put(q, P(6), 0), 0);
    ck_assert(green_queue_full(q));
    ck_assert_int_eq(green_queue_peek(q, &v, 5), 0);
    ck_assert_int_eq(I(v), 6);
    ck_assert_uint_eq(green_queue_size(q), 1);
    ck_assert_int_eq(green_queue_close(q), 0);
    ck_assert_int_eq(green_queue_get(q, &v, 0), 0);
    GREEN_ASSERT_ERRNO(green_queue_peek(q, &v, 5), EPIPE);
    green_join(gp, 5);
    green_release(gg);
    green_release(gp);
    green_queue_free(q);
}
END_TEST

static void *peek_one(void *arg)
{
    struct op *o = arg;
    errno = 0;
    o->rc = green_queue_peek(o->q, &o->item, o->timeout);
    o->err = errno;
    return NULL;
}

START_TEST(peek_on_channels_and_freed_queues)
{
    green_queue_t *ch = green_channel_new();
    struct op pk = {ch, NULL, 0, 5, NULL, 0, 0};
    green_t *gk = green_spawn(peek_one, &pk);
    green_t *gp = green_spawn(put_one_item, ch);
    ck_assert_int_eq(green_join(gk, 5), 0);
    ck_assert_int_eq(pk.rc, 0);
    ck_assert_int_eq(I(pk.item), 77);
    void *v;
    ck_assert_int_eq(green_queue_get(ch, &v, 0), 0);
    ck_assert_int_eq(I(v), 77);
    ck_assert(green_queue_full(ch));
    ck_assert(green_queue_empty(ch));
    green_join(gp, 5);
    green_release(gk);
    green_release(gp);
    /* Freed while peeking: EBADF. */
    struct op pk2 = {ch, NULL, 0, 5, NULL, 0, 0};
    gk = green_spawn(peek_one, &pk2);
    green_yield();
    green_queue_free(ch);
    join_expect_failure(gk, &pk2.rc, &pk2.err, EBADF);
    green_release(gk);
    ck_assert(green_queue_empty(NULL));
    ck_assert(!green_queue_full(NULL));
    ck_assert_uint_eq(green_queue_unfinished(NULL), 0);
}
END_TEST

/******************************************************************************/

static Suite *queue_suite(void)
{
    Suite *s = suite_create("queue");
    TCase *tc;

#define GREEN_TCASE(name)                                                   \
    tc = tcase_create(name);                                                \
    tcase_add_checked_fixture(tc, test_alarm_setup, test_alarm_teardown);   \
    suite_add_tcase(s, tc)

    GREEN_TCASE("fifo");
    tcase_add_test(tc, queue_items_come_out_in_put_order);
    tcase_add_test(tc, queue_bounded_holds_capacity_items);
    tcase_add_test(tc, queue_get_times_out_not_early);

    GREEN_TCASE("waiters");
    tcase_add_test(tc, queue_getters_are_served_in_wait_order);
    tcase_add_test(tc, queue_putters_wait_while_full_and_keep_their_order);
    tcase_add_test(tc, queue_killed_or_timed_out_getter_never_takes_an_item);
    tcase_add_test(tc, queue_killed_or_timed_out_putter_keeps_its_item);
    tcase_add_test(tc, queue_free_after_hand_over_is_safe);
    tcase_add_test(tc, queue_free_wakes_every_waiter_with_ebadf);

    GREEN_TCASE("channel");
    tcase_add_test(tc, channel_put_completes_only_when_a_getter_takes_it);
    tcase_add_test(tc, channel_hand_off_interleaves_sender_and_receiver);
    tcase_add_test(tc, channel_putters_are_served_in_wait_order);

    GREEN_TCASE("close");
    tcase_add_test(tc, queue_close_drains_then_fails_with_epipe);
    tcase_add_test(tc, queue_close_wakes_waiting_getters_and_putters);
    tcase_add_test(tc, channel_close_fails_waiting_putters);

    GREEN_TCASE("kinds");
    tcase_add_test(tc, lifo_queue_takes_the_newest);
    tcase_add_test(tc, priority_queue_orders_by_cmp_ties_fifo);
    tcase_add_test(tc, peek_waits_without_taking);
    tcase_add_test(tc, peek_on_channels_and_freed_queues);

    GREEN_TCASE("joinable");
    tcase_add_test(tc, queue_join_waits_for_every_task_done);
    tcase_add_test(tc, queue_join_times_out_and_counts_handed_items);
    tcase_add_test(tc, queue_free_wakes_joiners_with_ebadf);

    GREEN_TCASE("determinism");
    tcase_add_test(tc, queue_same_program_twice_gives_the_same_sequence);

    GREEN_TCASE("errors");
    tcase_add_test(tc, queue_bad_arguments_hub_and_threads);
    tcase_add_test(tc, queue_get_by_a_killed_greenlet_is_ecanceled);
    return s;
}

GREEN_TEST_MAIN(queue_suite)
