/* Unmodified hiredis (the synchronous client) under libgreen-patch,
   against a redis-server this program starts in a private directory
   (test/servers.h): a green_timeout or a green_kill ends a redisCommand
   early, after which the context refuses every command (hiredis keeps
   its error) and must be freed and connected again: the README's
   "Works with" rule.  The N-greenlets overlap is
   test/redis_concurrent.sh's. */
#include <hiredis/hiredis.h>

#include "servers.h"
#include "testutil.h"

static struct test_server redis;

static redisContext *redis_connect(void)
{
    redisContext *c = redisConnectUnix(redis.socket);
    ck_assert_ptr_nonnull(c);
    ck_assert_msg(c->err == 0, "redisConnectUnix: %s", c->errstr);
    return c;
}

/* 1 if c answers PING with PONG. */
static int redis_pongs(redisContext *c)
{
    redisReply *r = redisCommand(c, "PING");
    int ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    freeReplyObject(r);
    return ok;
}

/* A redisCommand under a 0.3 s timeout returns NULL at 0.3 s with an
   I/O error; the context stays failed; a new one works. */
START_TEST(test_timeout_ends_rediscommand_and_a_new_context_works)
{
    ck_assert_int_eq(green_patch_all(), 0);
    redisContext *c = redis_connect();
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, 0.3), 0);
    double t0 = test_now();
    redisReply *r = redisCommand(c, "BLPOP green:empty 5");
    double el = test_now() - t0;
    ck_assert_int_eq(green_timeout_end(&s), 1);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(c->err, REDIS_ERR_IO);
    GREEN_ASSERT_TIME(el, 0.3);
    ck_assert_int_eq(redis_pongs(c), 0); /* the context stays failed */
    redisFree(c);
    c = redis_connect();
    ck_assert_int_eq(redis_pongs(c), 1);
    redisFree(c);
}
END_TEST

static void *blpop_5(void *arg)
{
    redisReply *r = redisCommand(arg, "BLPOP green:empty 5");
    freeReplyObject(r);
    return r ? "BLPOP was not interrupted" : NULL;
}

/* green_kill of a greenlet blocked in redisCommand returns at once. */
START_TEST(test_kill_ends_rediscommand_promptly)
{
    ck_assert_int_eq(green_patch_all(), 0);
    redisContext *c = redis_connect();
    green_t *g = green_spawn(blpop_5, c);
    ck_assert_int_eq(green_sleep(0.2), 0);
    ck_assert_int_eq(green_done(g), 0);
    double t0 = test_now();
    ck_assert_int_eq(green_kill(g, 5), 0);
    double el = test_now() - t0;
    ck_assert_msg(el < test_prompt(), "green_kill took %.3f s", el);
    ck_assert_ptr_null(green_value(g));
    green_release(g);
    ck_assert_int_eq(c->err, REDIS_ERR_IO);
    ck_assert_int_eq(redis_pongs(c), 0);
    redisFree(c);
}
END_TEST

static Suite *hiredis_suite(void)
{
    int rc = test_redis_start(&redis);
    if (rc == TEST_SKIP) {
        fprintf(stderr, "check_hiredis: no redis-server: SKIP\n");
        exit(TEST_SKIP);
    }
    if (rc != 0)
        exit(EXIT_FAILURE);
    Suite *s = suite_create("hiredis");
    TCase *tc = tcase_create("sync");
    tcase_add_checked_fixture(tc, test_alarm_setup, test_alarm_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_timeout_ends_rediscommand_and_a_new_context_works);
    tcase_add_test(tc, test_kill_ends_rediscommand_promptly);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(hiredis_suite)
