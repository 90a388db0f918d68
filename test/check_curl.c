/* Unmodified libcurl (easy interface, plain HTTP) under libgreen-patch,
   against a libgreen HTTP server on loopback in the same hub
   (test_http_handler in test/servers.h): transfers of several greenlets
   overlap, and a green_timeout or a green_kill ends a curl_easy_perform
   early.  The rule the tests establish: after such a transfer the easy
   handle may be reused (curl closes the connection of a failed
   transfer, so the next transfer makes a new one and gets its own
   response). */
#define GREEN_WITH_LIBCURL
#include "clients.h"
#include "testutil.h"

#define N 8

static green_server_t *server;
static char base_url[64];

static void http_start(void)
{
    server = green_server_new("127.0.0.1:0", test_http_handler, NULL);
    ck_assert_ptr_nonnull(server);
    ck_assert_int_eq(green_server_start(server), 0);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d",
             green_server_port(server));
}

static void http_stop(void)
{
    ck_assert_int_eq(green_server_stop(server, 0), 0);
    green_server_free(server);
}

/* GET path from the server on h; the body in *b. */
static CURLcode get(CURL *h, const char *path, struct test_body *b)
{
    return test_curl_get(h, base_url, path, b);
}

static long connects(CURL *h)
{
    long n = -1;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &n);
    return n;
}

START_TEST(test_eight_transfers_overlap)
{
    ck_assert_int_eq(green_patch_all(), 0);
    http_start();
    void *args[N] = {base_url, base_url, base_url, base_url,
                     base_url, base_url, base_url, base_url};
    double el = test_run_concurrently(test_curl_get_one_second, args, N, 30);
    printf("libcurl: %d x 1 s transfers in %.3f s\n", N, el);
    ck_assert_msg(el > 0.99 && el < 1 + test_slack(),
                  "%d x 1 s transfers took %.3f s", N, el);
    http_stop();
}
END_TEST

/* A perform under a 0.3 s timeout fails at 0.3 s; the same handle then
   makes a new connection and gets its own response. */
START_TEST(test_timeout_ends_perform_and_the_handle_is_reusable)
{
    ck_assert_int_eq(green_patch_all(), 0);
    http_start();
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    struct test_body b;
    ck_assert_int_eq(get(h, "/sleep/0", &b), CURLE_OK);
    ck_assert_int_eq(connects(h), 1); /* now one connection is cached */
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, 0.3), 0);
    double t0 = test_now();
    CURLcode rc = get(h, "/sleep/5000", &b);
    double el = test_now() - t0;
    ck_assert_int_eq(green_timeout_end(&s), 1);
    printf("libcurl: a timed-out perform returns %d (%s)\n", rc,
           curl_easy_strerror(rc));
    ck_assert_int_ne(rc, CURLE_OK);
    GREEN_ASSERT_TIME(el, 0.3);
    ck_assert_int_eq(connects(h), 0); /* it reused the cached one */
    ck_assert_int_eq(get(h, "/sleep/1", &b), CURLE_OK);
    ck_assert_str_eq(b.data, "/sleep/1");
    ck_assert_int_eq(connects(h), 1); /* not the abandoned connection */
    curl_easy_cleanup(h);
    http_stop();
}
END_TEST

static void *perform_5_seconds(void *arg)
{
    struct test_body b;
    return get(arg, "/sleep/5000", &b) == CURLE_OK
               ? "the transfer was not interrupted"
               : NULL;
}

/* green_kill of a greenlet blocked in curl_easy_perform returns at
   once; the handle still works afterwards. */
START_TEST(test_kill_ends_perform_promptly)
{
    ck_assert_int_eq(green_patch_all(), 0);
    http_start();
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    green_t *g = green_spawn(perform_5_seconds, h);
    ck_assert_int_eq(green_sleep(0.2), 0);
    ck_assert_int_eq(green_done(g), 0);
    double t0 = test_now();
    ck_assert_int_eq(green_kill(g, 5), 0);
    double el = test_now() - t0;
    ck_assert_msg(el < test_prompt(), "green_kill took %.3f s", el);
    ck_assert_ptr_null(green_value(g));
    green_release(g);
    struct test_body b;
    ck_assert_int_eq(get(h, "/sleep/1", &b), CURLE_OK);
    ck_assert_str_eq(b.data, "/sleep/1");
    curl_easy_cleanup(h);
    http_stop();
}
END_TEST

static Suite *curl_suite(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
        atexit(curl_global_cleanup) != 0)
        exit(EXIT_FAILURE);
    Suite *s = suite_create("curl");
    TCase *tc = tcase_create("easy");
    tcase_add_checked_fixture(tc, test_alarm_setup, test_alarm_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_eight_transfers_overlap);
    tcase_add_test(tc, test_timeout_ends_perform_and_the_handle_is_reusable);
    tcase_add_test(tc, test_kill_ends_perform_promptly);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(curl_suite)
