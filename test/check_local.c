/* Greenlet-local storage: per-greenlet values, main's own value, the
   destructors at every kind of end (return, green_fail, kill, shutdown),
   pthread's rounds, deleted keys, and the errors. */
#include <stdint.h>

#include "synctest.h"

static green_key_t key;
static struct log dlog;
static green_t *destructor_ran_in;

static void record(void *value)
{
    destructor_ran_in = green_current();
    log_add(&dlog, I(value));
}

static void *set_and_return(void *arg)
{
    ck_assert_ptr_null(green_getspecific(key));
    ck_assert_int_eq(green_setspecific(key, arg), 0);
    green_yield(); /* the others set theirs meanwhile */
    ck_assert_ptr_eq(green_getspecific(key), arg);
    return NULL;
}

START_TEST(values_are_per_greenlet_and_main_has_its_own)
{
    dlog.n = 0;
    ck_assert_int_eq(green_key_create(&key, record), 0);
    ck_assert_int_eq(green_setspecific(key, P(100)), 0);
    green_t *a = green_spawn(set_and_return, P(1));
    green_t *b = green_spawn(set_and_return, P(2));
    ck_assert_int_eq(green_join(a, 5), 0);
    ck_assert_int_eq(green_join(b, 5), 0);
    ck_assert_ptr_eq(green_getspecific(key), P(100));
    /* Each destructor ran once, in its own greenlet. */
    int want[] = {1, 2};
    log_expect(&dlog, want, 2);
    ck_assert_ptr_eq(destructor_ran_in, b);
    green_release(a);
    green_release(b);
    /* Clearing is a set to NULL: no destructor for it. */
    ck_assert_int_eq(green_setspecific(key, NULL), 0);
    ck_assert_ptr_null(green_getspecific(key));
    ck_assert_int_eq(green_key_delete(key), 0);
}
END_TEST

static void *set_and_fail(void *arg)
{
    green_setspecific(key, arg);
    green_fail(EIO);
    return NULL; /* not reached */
}

static void *set_and_sleep(void *arg)
{
    green_setspecific(key, arg);
    green_sleep(10);
    return NULL;
}

START_TEST(destructors_run_on_fail_kill_and_shutdown)
{
    dlog.n = 0;
    ck_assert_int_eq(green_key_create(&key, record), 0);
    green_t *f = green_spawn(set_and_fail, P(1));
    green_t *k = green_spawn(set_and_sleep, P(2));
    green_t *s = green_spawn(set_and_sleep, P(3));
    ck_assert_int_eq(green_join(f, 5), 0);
    ck_assert_int_eq(green_error(f), EIO);
    ck_assert_int_eq(green_kill(k, 5), 0);
    ck_assert_int_eq(green_setspecific(key, P(4)), 0);
    int want1[] = {1, 2};
    log_expect(&dlog, want1, 2);
    /* s is still parked, main has a value: green_shutdown runs both. */
    green_release(f);
    green_release(k);
    green_release(s);
    green_shutdown();
    int want2[] = {1, 2, 3, 4};
    log_expect(&dlog, want2, 4);
    ck_assert_int_eq(green_key_delete(key), 0);
}
END_TEST

static int block_rc, block_err;

static void blocking_destructor(void *value)
{
    (void)value;
    errno = 0;
    block_rc = green_sleep(0.01);
    block_err = errno;
}

START_TEST(destructor_blocking_at_shutdown_fails_with_edeadlk)
{
    ck_assert_int_eq(green_key_create(&key, blocking_destructor), 0);
    green_t *s = green_spawn(set_and_sleep, P(1));
    green_yield();
    green_release(s);
    green_shutdown();
    ck_assert_int_eq(block_rc, -1);
    ck_assert_int_eq(block_err, EDEADLK);
    ck_assert_int_eq(green_key_delete(key), 0);
}
END_TEST

static void *set_and_return_blocking(void *arg)
{
    green_setspecific(key, arg);
    return NULL;
}

START_TEST(destructor_may_block_when_the_greenlet_returns)
{
    ck_assert_int_eq(green_key_create(&key, blocking_destructor), 0);
    block_rc = -2;
    green_t *g = green_spawn(set_and_return_blocking, P(1));
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(block_rc, 0);
    green_release(g);
    ck_assert_int_eq(green_key_delete(key), 0);
}
END_TEST

static int rounds;

static void again(void *value)
{
    rounds++;
    green_setspecific(key, value); /* asks for one more round */
}

START_TEST(destructor_rounds_are_bounded)
{
    rounds = 0;
    ck_assert_int_eq(green_key_create(&key, again), 0);
    green_t *g = green_spawn(set_and_return_blocking, P(1));
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(rounds, 4);
    green_release(g);
    ck_assert_int_eq(green_key_delete(key), 0);
}
END_TEST

START_TEST(deleted_keys_and_errors)
{
    dlog.n = 0;
    green_key_t k1, k2;
    GREEN_ASSERT_ERRNO(green_key_create(NULL, NULL), EINVAL);
    ck_assert_int_eq(green_key_create(&k1, record), 0);
    key = k1;
    green_t *g = green_new(set_and_sleep, P(5), NULL);
    green_start(g);
    green_yield();
    ck_assert_int_eq(green_key_delete(k1), 0);
    GREEN_ASSERT_ERRNO(green_key_delete(k1), EINVAL);
    GREEN_ASSERT_ERRNO(green_setspecific(k1, P(1)), EINVAL);
    ck_assert_ptr_null(green_getspecific(k1));
    /* The slot is reused with a new generation: the old value of g is
       invisible, and its deleted destructor never runs. */
    ck_assert_int_eq(green_key_create(&k2, record), 0);
    ck_assert_uint_ne(k1, k2);
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_int_eq(dlog.n, 0);
    ck_assert_ptr_null(green_getspecific(k2));
    GREEN_ASSERT_ERRNO(green_setspecific(12345u << 10, P(1)), EINVAL);
    ck_assert_ptr_null(green_getspecific(0));
    green_release(g);
    ck_assert_int_eq(green_key_delete(k2), 0);
    /* GREEN_KEYS_MAX at once, then EAGAIN. */
    static green_key_t all[GREEN_KEYS_MAX];
    int n = 0;
    while (n < GREEN_KEYS_MAX && green_key_create(&all[n], NULL) == 0)
        n++;
    ck_assert_int_eq(n, GREEN_KEYS_MAX);
    GREEN_ASSERT_ERRNO(green_key_create(&k1, NULL), EAGAIN);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(green_key_delete(all[i]), 0);
}
END_TEST

static void in_hub(void *arg)
{
    /* Callbacks have the hub's own value. */
    ck_assert_ptr_null(green_getspecific(key));
    ck_assert_int_eq(green_setspecific(key, arg), 0);
    ck_assert_ptr_eq(green_getspecific(key), arg);
}

START_TEST(callbacks_have_their_own_value)
{
    dlog.n = 0;
    ck_assert_int_eq(green_key_create(&key, record), 0);
    ck_assert_int_eq(green_setspecific(key, P(1)), 0);
    run_in_hub(in_hub, P(2));
    ck_assert_ptr_eq(green_getspecific(key), P(1));
    green_shutdown();
    ck_assert_int_eq(dlog.n, 2);
    /* No hub: NULL; a new hub starts empty (nothing read from the old,
       freed one). */
    ck_assert_ptr_null(green_getspecific(key));
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_ptr_null(green_getspecific(key));
    ck_assert_int_eq(green_setspecific(key, P(3)), 0);
    ck_assert_ptr_eq(green_getspecific(key), P(3));
    green_join(g, 5);
    green_release(g);
    green_shutdown();
    ck_assert_int_eq(dlog.n, 3);
    ck_assert_int_eq(green_key_delete(key), 0);
}
END_TEST

static void *thread_main(void *arg)
{
    green_setspecific(key, arg);
    return NULL; /* the hub goes with the thread: main's destructor */
}

START_TEST(thread_exit_runs_the_main_destructor)
{
    dlog.n = 0;
    ck_assert_int_eq(green_key_create(&key, record), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, thread_main, P(8)), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    int want[] = {8};
    log_expect(&dlog, want, 1);
    ck_assert_int_eq(green_key_delete(key), 0);
}
END_TEST

static Suite *local_suite(void)
{
    Suite *s = suite_create("local");
    TCase *tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, test_alarm_setup, test_alarm_teardown);
    suite_add_tcase(s, tc);
    tcase_add_test(tc, values_are_per_greenlet_and_main_has_its_own);
    tcase_add_test(tc, destructors_run_on_fail_kill_and_shutdown);
    tcase_add_test(tc, destructor_blocking_at_shutdown_fails_with_edeadlk);
    tcase_add_test(tc, destructor_may_block_when_the_greenlet_returns);
    tcase_add_test(tc, destructor_rounds_are_bounded);
    tcase_add_test(tc, deleted_keys_and_errors);
    tcase_add_test(tc, callbacks_have_their_own_value);
    tcase_add_test(tc, thread_exit_runs_the_main_destructor);
    return s;
}

GREEN_TEST_MAIN(local_suite)
