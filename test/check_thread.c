/* One hub per thread, green_hub_current / green_hub_spawn, cross-thread
   misuse (EXDEV) and thread exit without green_shutdown. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "testutil.h"

/******************************************************************************/
/*  THR-1: a hub per thread                                                   */
/******************************************************************************/

struct per_thread {
    int done;                  /* greenlets that finished their work */
    int wrong_current;         /* green_current() was not the greenlet */
    green_t *main_g;           /* this thread's main greenlet */
    green_hub_t *hub;
    int rc;
};

struct small_arg {
    struct per_thread *pt;
    green_t *self;
};

static void *small_work(void *a)
{
    struct per_thread *pt = a;
    green_t *me = green_current();
    for (int i = 0; i < 3; i++) {
        if (green_yield() != 0 || green_current() != me)
            pt->wrong_current++;
    }
    if (green_sleep(0.001) != 0)
        pt->wrong_current++;
    pt->done++;
    return NULL;
}

static void *hub_thread(void *a)
{
    struct per_thread *pt = a;
    pt->hub = green_hub_current();
    pt->main_g = green_current();
    green_t **gs = malloc(1000 * sizeof *gs);
    for (int i = 0; i < 1000; i++)
        gs[i] = green_spawn(small_work, pt);
    pt->rc = green_joinall(gs, 1000, 30);
    for (int i = 0; i < 1000; i++)
        green_release(gs[i]);
    free(gs);
    if (green_current() != pt->main_g)
        pt->wrong_current++;
    green_shutdown();
    return NULL;
}

START_TEST(four_threads_each_run_1000_greenlets)
{
    alarm(60);
    struct per_thread pt[4];
    pthread_t th[4];
    memset(pt, 0, sizeof pt);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hub_thread, &pt[i]), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pt[i].rc, 0);
        ck_assert_int_eq(pt[i].done, 1000);
        ck_assert_int_eq(pt[i].wrong_current, 0);
        for (int j = 0; j < i; j++) {
            ck_assert_ptr_ne(pt[i].main_g, pt[j].main_g);
            ck_assert_ptr_ne(pt[i].hub, pt[j].hub);
        }
    }
    alarm(0);
}
END_TEST

/******************************************************************************/
/*  THR-2: green_hub_spawn                                                    */
/******************************************************************************/

enum { SENDERS = 3, PER_SENDER = 3334, TOTAL = SENDERS * PER_SENDER };

static atomic_int ran_count[TOTAL];
static int ran_total, wrong_thread, out_of_order;
static int last_seen[SENDERS];
static pthread_t target_thread;

static void *spawned(void *a)
{
    int idx = (int)(intptr_t)a;
    atomic_fetch_add(&ran_count[idx], 1);
    if (!pthread_equal(pthread_self(), target_thread))
        wrong_thread++;
    /* FIFO per sender. */
    int sender = idx / PER_SENDER, seq = idx % PER_SENDER;
    if (seq <= last_seen[sender])
        out_of_order++;
    last_seen[sender] = seq;
    ran_total++;
    return NULL;
}

struct sender_arg {
    green_hub_t *hub;
    int sender;
    int failures;
};

static void *sender_thread(void *a)
{
    struct sender_arg *s = a;
    for (int i = 0; i < PER_SENDER; i++)
        if (green_hub_spawn(s->hub, spawned,
                            (void *)(intptr_t)(s->sender * PER_SENDER + i)) != 0)
            s->failures++;
    return NULL;
}

START_TEST(ten_thousand_spawns_from_three_threads_each_once)
{
    alarm(60);
    target_thread = pthread_self();
    for (int i = 0; i < SENDERS; i++)
        last_seen[i] = -1;
    green_hub_t *hub = green_hub_current();
    ck_assert_ptr_nonnull(hub);
    int threads_before = test_thread_count();
    struct sender_arg sa[SENDERS];
    pthread_t th[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        sa[i] = (struct sender_arg){hub, i, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, sender_thread, &sa[i]),
                         0);
    }
    double deadline = test_now() + 30;
    while (ran_total < TOTAL && test_now() < deadline)
        ck_assert_int_eq(green_sleep(0.002), 0);
    for (int i = 0; i < SENDERS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(sa[i].failures, 0);
    }
    ck_assert_int_eq(green_sleep(0.02), 0); /* nothing extra arrives */
    ck_assert_int_eq(ran_total, TOTAL);
    for (int i = 0; i < TOTAL; i++)
        ck_assert_msg(atomic_load(&ran_count[i]) == 1, "request %d ran %d times",
                      i, atomic_load(&ran_count[i]));
    ck_assert_int_eq(wrong_thread, 0);
    ck_assert_int_eq(out_of_order, 0);
    /* The senders did not get hubs (no threads of theirs remain). */
    if (!GREEN_TEST_SANITIZED) /* TSan adds a thread of its own */
        ck_assert_int_eq(test_thread_count(), threads_before);
    alarm(0);
}
END_TEST

/* A thread whose hub waits until `want` greenlets arrived. */
struct target {
    green_hub_t *_Atomic hub;
    int want;
    int got;
    int in_thread;
    pthread_t self;
};

static void *count_arrival(void *a)
{
    struct target *t = a;
    t->got++;
    t->in_thread += pthread_equal(pthread_self(), t->self);
    return NULL;
}

static void *target_main(void *a)
{
    struct target *t = a;
    t->self = pthread_self();
    atomic_store(&t->hub, green_hub_current());
    double deadline = test_now() + 20;
    while (t->got < t->want && test_now() < deadline)
        green_sleep(0.002);
    green_shutdown();
    return NULL;
}

START_TEST(spawn_into_another_threads_hub)
{
    alarm(30);
    struct target t = {NULL, 500, 0, 0, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, target_main, &t), 0);
    while (!atomic_load(&t.hub))
        usleep(1000);
    for (int i = 0; i < 500; i++)
        ck_assert_int_eq(green_hub_spawn(atomic_load(&t.hub), count_arrival,
                                         &t),
                         0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(t.got, 500);
    ck_assert_int_eq(t.in_thread, 500);
    alarm(0);
}
END_TEST

static int link_spawn_rc, own_ran;
static void *own_fn(void *a)
{
    (void)a;
    own_ran++;
    return NULL;
}

static void spawn_in_link(green_t *g, void *hub)
{
    (void)g;
    link_spawn_rc = green_hub_spawn(hub, own_fn, NULL);
}

START_TEST(spawn_into_own_hub_from_greenlet_and_hub_context)
{
    green_hub_t *hub = green_hub_current();
    ck_assert_int_eq(green_hub_spawn(hub, own_fn, NULL), 0);
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_int_eq(green_link(g, spawn_in_link, hub), 0);
    ck_assert_int_eq(green_run(), 0);
    ck_assert_int_eq(link_spawn_rc, 0);
    ck_assert_int_eq(own_ran, 2);
    green_release(g);
}
END_TEST

static void *shutdown_at_once(void *a)
{
    green_hub_t **out = a;
    *out = green_hub_current();
    green_shutdown();
    return NULL;
}

START_TEST(spawn_to_hub_that_shut_down_is_esrch)
{
    /* Our hub exists first, so no new hub can reuse the freed one's
       address before the spawn. */
    ck_assert_ptr_nonnull(green_hub_current());
    green_hub_t *gone = NULL;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, shutdown_at_once, &gone), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_ptr_nonnull(gone);
    GREEN_ASSERT_ERRNO(green_hub_spawn(gone, own_fn, NULL), ESRCH);
    ck_assert_int_eq(own_ran, 0);
}
END_TEST

/* Requests that arrive while the target does not run its loop and then
   shuts down are dropped: fn never runs, nothing leaks (Valgrind). */
struct dropper {
    green_hub_t *_Atomic hub;
    atomic_int go;
};

static void *dropper_main(void *a)
{
    struct dropper *d = a;
    atomic_store(&d->hub, green_hub_current());
    while (!atomic_load(&d->go))
        usleep(1000);
    green_shutdown();
    return NULL;
}

START_TEST(pending_requests_dropped_at_shutdown)
{
    alarm(20);
    struct dropper d = {NULL, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, dropper_main, &d), 0);
    while (!atomic_load(&d.hub))
        usleep(1000);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(green_hub_spawn(atomic_load(&d.hub), own_fn, NULL),
                         0);
    atomic_store(&d.go, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(own_ran, 0);
    alarm(0);
}
END_TEST

START_TEST(idle_async_does_not_keep_loop_alive)
{
    ck_assert_ptr_nonnull(green_hub_current());
    double t0 = test_now();
    ck_assert_int_eq(green_run(), 0);
    ck_assert_msg(test_now() - t0 < test_prompt(), "green_run waited");
}
END_TEST

START_TEST(hub_spawn_bad_args)
{
    green_hub_t *hub = green_hub_current();
    GREEN_ASSERT_ERRNO(green_hub_spawn(NULL, own_fn, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_hub_spawn(hub, NULL, NULL), EINVAL);
}
END_TEST

/******************************************************************************/
/*  LIF-8: another thread's greenlet                                          */
/******************************************************************************/

struct owner {
    green_t *_Atomic g;     /* sleeping greenlet of the owner thread */
    green_t *_Atomic fresh; /* created, not started */
    atomic_int release;
    int killed_rc, err;
};

static void *long_sleep(void *a)
{
    (void)a;
    green_sleep(30);
    return NULL;
}

static void *owner_main(void *a)
{
    struct owner *o = a;
    green_t *g = green_spawn(long_sleep, NULL);
    green_t *fresh = green_new(test_noop, NULL, NULL);
    green_yield();
    atomic_store(&o->fresh, fresh);
    atomic_store(&o->g, g);
    while (!atomic_load(&o->release))
        green_sleep(0.002);
    o->killed_rc = green_kill(g, 1);
    o->err = green_error(g);
    green_release(g);
    green_release(fresh);
    green_shutdown();
    return NULL;
}

static void on_done(green_t *g, void *a)
{
    (void)g;
    (void)a;
}

START_TEST(other_threads_greenlet_is_exdev)
{
    alarm(20);
    struct owner o = {NULL, NULL, 0, 9, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, owner_main, &o), 0);
    while (!atomic_load(&o.g))
        usleep(1000);
    green_t *g = atomic_load(&o.g), *fresh = atomic_load(&o.fresh);
    GREEN_ASSERT_ERRNO(green_join(g, 0), EXDEV);
    GREEN_ASSERT_ERRNO(green_join(g, 1), EXDEV);
    GREEN_ASSERT_ERRNO(green_kill(g, 0), EXDEV);
    GREEN_ASSERT_ERRNO(green_killall(&g, 1, 0), EXDEV);
    GREEN_ASSERT_ERRNO(green_link(g, on_done, NULL), EXDEV);
    GREEN_ASSERT_ERRNO(green_start(fresh), EXDEV);
    ck_assert_int_eq(green_done(g), 0); /* nothing happened to it */
    atomic_store(&o.release, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(o.killed_rc, 0);
    ck_assert_int_eq(o.err, ECANCELED);
    alarm(0);
}
END_TEST

/******************************************************************************/
/*  THR-3: a thread exits without green_shutdown                              */
/******************************************************************************/

static void *job(void *a)
{
    return a;
}

static void *exit_without_shutdown(void *a)
{
    (void)a;
    green_hub_current();
    green_t *g = green_spawn(test_noop, NULL);
    green_join(g, 1);
    green_release(g);
    green_threadpool_call(job, NULL, NULL); /* starts a worker */
    return NULL; /* the pthread key destructor frees the hub */
}

START_TEST(thread_exit_frees_hub_and_joins_workers)
{
    alarm(20);
    int before = test_thread_count();
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, exit_without_shutdown, NULL),
                     0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    if (!GREEN_TEST_SANITIZED) /* TSan adds a thread of its own */
        ck_assert_int_eq(test_thread_count(), before);
    alarm(0);
}
END_TEST

static void reset(void)
{
    for (int i = 0; i < TOTAL; i++)
        atomic_store(&ran_count[i], 0);
    ran_total = wrong_thread = out_of_order = 0;
    own_ran = 0;
    link_spawn_rc = -2;
    green_test_setup();
}

static Suite *thread_suite(void)
{
    Suite *s = suite_create("thread");
    TCase *tc = tcase_create("hubs");
    tcase_add_checked_fixture(tc, reset, green_test_teardown);
    tcase_add_test(tc, four_threads_each_run_1000_greenlets);
    tcase_add_test(tc, thread_exit_frees_hub_and_joins_workers);
    suite_add_tcase(s, tc);

    tc = tcase_create("hub_spawn");
    tcase_add_checked_fixture(tc, reset, green_test_teardown);
    tcase_add_test(tc, ten_thousand_spawns_from_three_threads_each_once);
    tcase_add_test(tc, spawn_into_another_threads_hub);
    tcase_add_test(tc, spawn_into_own_hub_from_greenlet_and_hub_context);
    tcase_add_test(tc, spawn_to_hub_that_shut_down_is_esrch);
    tcase_add_test(tc, pending_requests_dropped_at_shutdown);
    tcase_add_test(tc, idle_async_does_not_keep_loop_alive);
    tcase_add_test(tc, hub_spawn_bad_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("cross_thread");
    tcase_add_checked_fixture(tc, reset, green_test_teardown);
    tcase_add_test(tc, other_threads_greenlet_is_exdev);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(thread_suite)
