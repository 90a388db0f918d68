/* Real TLS clients under patching (linked with libgreen-patch): libcurl
   easy transfers and a raw blocking OpenSSL client, N at once in N
   greenlets, against an in-process green_tls_server_new server whose
   handler sleeps DELAY (RAW_DELAY) before answering.  Patched, they all
   finish in about one delay (unpatched, each would block the thread: N
   delays, see bench/tls_clients_bench).  Without libcurl the curl part is
   skipped and the program exits 77 once the rest passed. */
#include "tlstest.h"
#include "tlsclients.h"
#include "clienttest.h"

#define N 8
#define DELAY 1.0       /* the curl transfers' */
#define RAW_DELAY 0.5   /* the raw OpenSSL clients' (make check time) */

static const struct tls_files *files;
static double delay = DELAY;
static green_tls_ctx_t *sctx;
static green_server_t *server;

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

START_TEST(raw_openssl_clients_run_concurrently)
{
    struct tls_target t = {green_server_port(server), NULL,
                           openssl_client_ctx(files->ca)};
    ck_assert_ptr_nonnull(t.ctx);
    delay = RAW_DELAY;
    /* Concurrent: one delay, not N. */
    test_assert_overlap(tls_openssl_unit, &t, N, RAW_DELAY, 0);
    SSL_CTX_free(t.ctx);
}
END_TEST

/******************************************************************************/
/*  libcurl                                                                   */
/******************************************************************************/

#ifdef HAVE_LIBCURL
START_TEST(curl_transfers_run_concurrently)
{
    struct tls_target t = {green_server_port(server), files->ca, NULL};
    test_assert_overlap(tls_curl_unit, &t, N, DELAY, 0);
}
END_TEST

struct transfer {
    int rc;
    struct test_body body;
};

/* A curl_get from the server; its CURLcode in the struct transfer. */
static void *curl_main(void *arg)
{
    struct transfer *t = arg;
    t->rc = curl_get(green_server_port(server), files->ca, &t->body);
    return NULL;
}

START_TEST(timeout_scope_ends_a_curl_transfer_early)
{
    struct transfer t;
    double el;
    test_call_timing_out(curl_main, &t, 0.2, &el);
    ck_assert_int_ne(t.rc, CURLE_OK);
    ck_assert_double_lt(el, DELAY);
}
END_TEST

START_TEST(killed_curl_transfer_returns)
{
    struct transfer t = {.rc = -1};
    test_kill_blocked(curl_main, &t, DELAY / 2 + test_slack());
    ck_assert_int_ne(t.rc, -1);
    ck_assert_int_ne(t.rc, CURLE_OK);
}
END_TEST
#endif

static Suite *tls_clients_suite(void)
{
    files = tls_make_files();
    Suite *s = suite_create("tls_clients");
    TCase *tc = test_add_tcase(s, "openssl", setup, teardown, 120);
    tcase_add_test(tc, raw_openssl_clients_run_concurrently);
#ifdef HAVE_LIBCURL
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tc = test_add_tcase(s, "curl", setup, teardown, 120);
    tcase_add_test(tc, curl_transfers_run_concurrently);
    tcase_add_test(tc, timeout_scope_ends_a_curl_transfer_early);
    tcase_add_test(tc, killed_curl_transfer_returns);
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
