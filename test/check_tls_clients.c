/* Real TLS clients under patching (linked with libgreen-patch): libcurl
   easy transfers and a raw blocking OpenSSL client, N at once in N
   greenlets, against an in-process green_tls_server_new server whose
   handler sleeps DELAY (RAW_DELAY) before answering.  Patched, they all
   finish in about one delay (unpatched, each would block the thread: N
   delays, see bench/tls_clients_bench).  Without libcurl the curl part is
   skipped and the program exits 77 once the rest passed. */
#include "testutil.h"
#include "tlstest.h"
#include "tlsclients.h"

#define N 8
#define DELAY 1.0       /* the curl transfers' */
#define RAW_DELAY 0.5   /* the raw OpenSSL clients' (make check time) */

static const struct tls_files *files;
static double delay = DELAY;
static green_tls_ctx_t *sctx;
static green_server_t *server;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void setup(void)
{
    green_test_setup();
    ck_assert_int_eq(green_patch_all(), 0);
    delay = DELAY;
    sctx = green_tls_server_ctx(files->cert, files->key);
    ck_assert_ptr_nonnull(sctx);
    server = green_tls_server_new("127.0.0.1:0", sctx, slow_hello, &delay);
    ck_assert_ptr_nonnull(server);
    ck_assert_int_eq(green_server_start(server), 0);
}

static void teardown(void)
{
    /* Handlers still sleeping for a client that gave up are killed. */
    green_server_stop(server, 0);
    green_server_free(server);
    green_tls_ctx_free(sctx);
    green_test_teardown();
}

/******************************************************************************/
/*  Raw OpenSSL                                                               */
/******************************************************************************/

static SSL_CTX *raw_ctx;

static void *raw_main(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)openssl_get(raw_ctx,
                                         green_server_port(server));
}

START_TEST(raw_openssl_clients_run_concurrently)
{
    raw_ctx = openssl_client_ctx(files->ca);
    ck_assert_ptr_nonnull(raw_ctx);
    delay = RAW_DELAY;
    green_t *g[N];
    double t0 = now();
    for (int i = 0; i < N; i++)
        g[i] = green_spawn(raw_main, NULL);
    ck_assert_int_eq(green_joinall(g, N, 30), 0);
    double el = now() - t0;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq((intptr_t)green_value(g[i]), 0);
        green_release(g[i]);
    }
    /* Concurrent: one delay, not N. */
    GREEN_ASSERT_TIME(el, RAW_DELAY);
    ck_assert_double_lt(el, 2 * RAW_DELAY + test_slack());
    SSL_CTX_free(raw_ctx);
}
END_TEST

/******************************************************************************/
/*  libcurl                                                                   */
/******************************************************************************/

#ifdef HAVE_LIBCURL
struct transfer {
    int rc;
    struct curl_body body;
};

static void *curl_main(void *arg)
{
    struct transfer *t = arg;
    t->rc = curl_get(green_server_port(server), files->ca, &t->body);
    return NULL;
}

START_TEST(curl_transfers_run_concurrently)
{
    static struct transfer t[N];
    green_t *g[N];
    double t0 = now();
    for (int i = 0; i < N; i++)
        g[i] = green_spawn(curl_main, &t[i]);
    ck_assert_int_eq(green_joinall(g, N, 30), 0);
    double el = now() - t0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(t[i].rc == CURLE_OK, "transfer %d: %s", i,
                      curl_easy_strerror(t[i].rc));
        ck_assert_str_eq(t[i].body.buf, SLOW_BODY);
        green_release(g[i]);
    }
    GREEN_ASSERT_TIME(el, DELAY);
    ck_assert_double_lt(el, 2 * DELAY + test_slack());
}
END_TEST

START_TEST(timeout_scope_ends_a_curl_transfer_early)
{
    struct transfer t;
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, 0.2), 0);
    double t0 = now();
    curl_main(&t);
    double el = now() - t0;
    ck_assert_int_eq(green_timeout_end(&s), 1);
    ck_assert_int_ne(t.rc, CURLE_OK);
    GREEN_ASSERT_TIME(el, 0.2);
    ck_assert_double_lt(el, DELAY);
}
END_TEST

START_TEST(killed_curl_transfer_returns)
{
    struct transfer t = {.rc = -1};
    green_t *g = green_spawn(curl_main, &t);
    green_sleep(0.1);
    double t0 = now();
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_double_lt(now() - t0, DELAY / 2 + test_slack());
    ck_assert_int_ne(t.rc, -1);
    ck_assert_int_ne(t.rc, CURLE_OK);
    green_release(g);
}
END_TEST
#endif

static Suite *tls_clients_suite(void)
{
    files = tls_make_files();
    Suite *s = suite_create("tls_clients");
    TCase *tc = tcase_create("openssl");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, raw_openssl_clients_run_concurrently);
    suite_add_tcase(s, tc);
#ifdef HAVE_LIBCURL
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tc = tcase_create("curl");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, curl_transfers_run_concurrently);
    tcase_add_test(tc, timeout_scope_ends_a_curl_transfer_early);
    tcase_add_test(tc, killed_curl_transfer_returns);
    suite_add_tcase(s, tc);
#endif
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tls_clients_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
#ifdef HAVE_LIBCURL
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
#else
    fprintf(stderr, "libcurl not found at configure time: its part skipped\n");
    return failed ? EXIT_FAILURE : 77;
#endif
}
