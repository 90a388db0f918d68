/* Helpers shared by the synchronization suites (check_sync, check_queue,
   check_pool): an ordered log written by greenlets, running code inside
   the hub or in another OS thread. */
#ifndef GREEN_SYNCTEST_H_INCLUDED
#define GREEN_SYNCTEST_H_INCLUDED

#include <pthread.h>
#include <stdint.h>

#include "testutil.h"

#define P(x) ((void *)(intptr_t)(x))
#define I(p) ((int)(intptr_t)(p))

/* An ordered log of small integers written by greenlets. */
struct log {
    int v[256];
    int n;
};

static inline void log_add(struct log *l, int x)
{
    ck_assert_int_lt(l->n, 256);
    l->v[l->n++] = x;
}

static inline void log_expect(const struct log *l, const int *want, int n)
{
    ck_assert_int_eq(l->n, n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(l->v[i] == want[i], "log[%d] = %d, expected %d", i,
                      l->v[i], want[i]);
}

/* Run fn(arg) inside the hub (a link callback) and wait for it. */
struct in_hub {
    void (*fn)(void *arg);
    void *arg;
    int ran;
};

static inline void in_hub_cb(green_t *g, void *arg)
{
    (void)g;
    struct in_hub *h = arg;
    h->fn(h->arg);
    h->ran = 1;
}

static inline void run_in_hub(void (*fn)(void *), void *arg)
{
    struct in_hub h = {fn, arg, 0};
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(green_link(g, in_hub_cb, &h), 0);
    ck_assert_int_eq(green_join(g, -1), 0);
    while (!h.ran)
        green_yield();
    green_release(g);
}

/* Greenlet g finishes within 5 s, its call having failed with -1 and
   *err == want (rc and err are what the greenlet recorded). */
static inline void join_expect_failure(green_t *g, const int *rc,
                                       const int *err, int want)
{
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(*rc, -1);
    ck_assert_int_eq(*err, want);
}

/* Checks made in another OS thread are counted there and asserted by the
   test's own thread (Check's assertions belong to the test thread). */
static int thread_bad;
#define THREAD_EXPECT_ERRNO(expr, err)                                      \
    do {                                                                    \
        errno = 0;                                                          \
        long long rc_ = (long long)(intptr_t)(expr);                        \
        if ((rc_ != -1 && rc_ != 0) || errno != (err)) {                    \
            fprintf(stderr, "%s:%d: %s: rc=%lld errno=%d\n", __FILE__,      \
                    __LINE__, #expr, rc_, errno);                           \
            thread_bad++;                                                   \
        }                                                                   \
    } while (0)

/* Run fn(arg) in a new OS thread and wait for it; it made no failed
   THREAD_EXPECT_ERRNO check. */
static inline void run_in_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    thread_bad = 0;
    ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(thread_bad, 0);
}

#endif
