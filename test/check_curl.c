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
#include "clienttest.h"

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
    double el = test_assert_overlap(test_curl_get_one_second, base_url, N,
                                    1, 50);
    printf("libcurl: %d x 1 s transfers in %.3f s\n", N, el);
    http_stop();
}
END_TEST

/* NULL if a 5 s transfer on arg (an easy handle) failed (it was
   interrupted); says how. */
static void *perform_5_seconds(void *arg)
{
    struct test_body b;
    CURLcode rc = get(arg, "/sleep/5000", &b);
    printf("libcurl: an interrupted perform returns %d (%s)\n", rc,
           curl_easy_strerror(rc));
    return rc == CURLE_OK ? "the transfer was not interrupted" : NULL;
}

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
    ck_assert_ptr_null(test_call_timing_out(perform_5_seconds, h, 0.3, NULL));
    ck_assert_int_eq(connects(h), 0); /* it reused the cached one */
    ck_assert_int_eq(get(h, "/sleep/1", &b), CURLE_OK);
    ck_assert_str_eq(b.data, "/sleep/1");
    ck_assert_int_eq(connects(h), 1); /* not the abandoned connection */
    curl_easy_cleanup(h);
    http_stop();
}
END_TEST

/* green_kill of a greenlet blocked in curl_easy_perform returns at
   once; the handle still works afterwards. */
START_TEST(test_kill_ends_perform_promptly)
{
    ck_assert_int_eq(green_patch_all(), 0);
    http_start();
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    test_kill_blocked(perform_5_seconds, h, test_prompt());
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
    return test_client_suite("curl", "easy", (const TTest *[]){
        test_eight_transfers_overlap,
        test_timeout_ends_perform_and_the_handle_is_reusable,
        test_kill_ends_perform_promptly,
        NULL});
}

GREEN_TEST_MAIN(curl_suite)
