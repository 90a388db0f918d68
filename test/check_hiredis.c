/* Unmodified hiredis (the synchronous client) under libgreen-patch,
   against a redis-server this program starts in a private directory
   (test/servers.h): a green_timeout or a green_kill ends a redisCommand
   early, after which the context refuses every command (hiredis keeps
   its error) and must be freed and connected again: the README's
   "Works with" rule.  The N-greenlets overlap is
   test/redis_concurrent.sh's. */
#include <hiredis/hiredis.h>

#include "clienttest.h"

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

/* NULL if a BLPOP of 5 s on arg (a redisContext *) failed (it was
   interrupted). */
static void *blpop_5(void *arg)
{
    redisReply *r = redisCommand(arg, "BLPOP green:empty 5");
    freeReplyObject(r);
    return r ? "BLPOP was not interrupted" : NULL;
}

/* A redisCommand under a 0.3 s timeout returns NULL at 0.3 s with an
   I/O error; the context stays failed; a new one works. */
START_TEST(test_timeout_ends_rediscommand_and_a_new_context_works)
{
    ck_assert_int_eq(green_patch_all(), 0);
    redisContext *c = redis_connect();
    ck_assert_ptr_null(test_call_timing_out(blpop_5, c, 0.3, NULL));
    ck_assert_int_eq(c->err, REDIS_ERR_IO);
    ck_assert_int_eq(redis_pongs(c), 0); /* the context stays failed */
    redisFree(c);
    c = redis_connect();
    ck_assert_int_eq(redis_pongs(c), 1);
    redisFree(c);
}
END_TEST

/* green_kill of a greenlet blocked in redisCommand returns at once. */
START_TEST(test_kill_ends_rediscommand_promptly)
{
    ck_assert_int_eq(green_patch_all(), 0);
    redisContext *c = redis_connect();
    test_kill_blocked(blpop_5, c, test_prompt());
    ck_assert_int_eq(c->err, REDIS_ERR_IO);
    ck_assert_int_eq(redis_pongs(c), 0);
    redisFree(c);
}
END_TEST

static Suite *hiredis_suite(void)
{
    test_start_or_skip("check_hiredis", "redis-server", &redis,
                       test_redis_start);
    return test_client_suite("hiredis", "sync", (const TTest *[]){
        test_timeout_ends_rediscommand_and_a_new_context_works,
        test_kill_ends_rediscommand_promptly,
        NULL});
}

GREEN_TEST_MAIN(hiredis_suite)
