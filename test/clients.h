/* The client side of the client-library tests and of
   bench/clients_bench.c: connect, query, and the one-greenlet unit of
   the N x 1 s workload (for test_run_concurrently), per library.  The
   includer defines GREEN_WITH_LIBPQ, GREEN_WITH_LIBMARIADB and/or
   GREEN_WITH_LIBCURL for the libraries it links. */
#ifndef GREEN_CLIENTS_H_INCLUDED
#define GREEN_CLIENTS_H_INCLUDED

#include "servers.h"

#ifdef GREEN_WITH_LIBPQ
#include <libpq-fe.h>

/* A connection to the postgres of s (check PQstatus). */
static inline PGconn *test_pq_connect(const struct test_server *s)
{
    char info[256];
    snprintf(info, sizeof info,
             "host=%s dbname=postgres user=postgres connect_timeout=20",
             s->dir);
    return PQconnectdb(info);
}

/* The single value `sql` returns on c, in buf ("" on an error). */
static inline const char *test_pq_value(PGconn *c, const char *sql,
                                        char *buf, size_t size)
{
    PGresult *r = PQexec(c, sql);
    snprintf(buf, size, "%s",
             PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                 ? PQgetvalue(r, 0, 0)
                 : "");
    PQclear(r);
    return buf;
}

/* One greenlet of the workload (arg: the server): connect,
   pg_sleep(1), disconnect.  NULL, or what failed. */
static inline void *test_pq_sleep_one_second(void *arg)
{
    PGconn *c = test_pq_connect(arg);
    const char *err = "connect";
    char buf[16];
    if (PQstatus(c) == CONNECTION_OK)
        err = strcmp(test_pq_value(c, "SELECT 1 FROM pg_sleep(1)", buf,
                                   sizeof buf),
                     "1") == 0
                  ? NULL
                  : "pg_sleep";
    PQfinish(c);
    return (void *)err;
}
#endif

#ifdef GREEN_WITH_LIBMARIADB
#include <errmsg.h>
#include <mysql.h>

/* A handle connected to the mariadbd of s, or NULL (closed). */
static inline MYSQL *test_mariadb_connect(const struct test_server *s)
{
    MYSQL *m = mysql_init(NULL);
    if (m && !mysql_real_connect(m, NULL, "root", NULL, NULL, 0, s->socket,
                                 0)) {
        fprintf(stderr, "mysql_real_connect: %s\n", mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

/* The single value `sql` returns on m, in buf ("" on an error). */
static inline const char *test_mariadb_value(MYSQL *m, const char *sql,
                                             char *buf, size_t size)
{
    buf[0] = '\0';
    if (mysql_query(m, sql) != 0)
        return buf;
    MYSQL_RES *res = mysql_store_result(m);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (row && row[0])
        snprintf(buf, size, "%s", row[0]);
    mysql_free_result(res);
    return buf;
}

/* One greenlet of the workload (arg: the server): connect, SLEEP(1),
   close.  NULL, or what failed. */
static inline void *test_mariadb_sleep_one_second(void *arg)
{
    MYSQL *m = test_mariadb_connect(arg);
    if (!m)
        return "connect";
    char buf[16];
    const char *err =
        strcmp(test_mariadb_value(m, "SELECT SLEEP(1)", buf, sizeof buf),
               "0") == 0
            ? NULL
            : "SLEEP(1)";
    mysql_close(m);
    return (void *)err;
}
#endif

#ifdef GREEN_WITH_LIBCURL
#include <curl/curl.h>

/* A response body, NUL-terminated. */
struct test_body {
    char data[256];
    size_t len;
};

static inline size_t test_body_write(char *p, size_t size, size_t n,
                                     void *arg)
{
    struct test_body *b = arg;
    size_t len = size * n;
    if (len > sizeof b->data - 1 - b->len)
        return 0;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

/* GET base + path on h (an easy handle); the body in *b. */
static inline CURLcode test_curl_get(CURL *h, const char *base,
                                     const char *path, struct test_body *b)
{
    char url[128];
    snprintf(url, sizeof url, "%s%s", base, path);
    memset(b, 0, sizeof *b);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, test_body_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    return curl_easy_perform(h);
}

/* One greenlet of the workload (arg: the base URL of a server running
   test_http_handler): a new easy handle, a 1 s transfer.  NULL, or
   what failed. */
static inline void *test_curl_get_one_second(void *arg)
{
    CURL *h = curl_easy_init();
    struct test_body b;
    const char *err = "curl_easy_init";
    if (h)
        err = test_curl_get(h, arg, "/sleep/1000", &b) != CURLE_OK
                  ? "perform"
              : strcmp(b.data, "/sleep/1000") != 0 ? "wrong body"
                                                   : NULL;
    curl_easy_cleanup(h);
    return (void *)err;
}
#endif

#endif
