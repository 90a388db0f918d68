/* Real servers for the client-library tests (test/check_pq.c,
   test/check_mariadb.c, test/check_hiredis.c, test/check_curl.c) and
   bench/clients_bench.c: postgres, mariadbd and redis-server each run
   in a private directory, are started before green_patch_all() by the
   process that owns them, and never outlive that process
   (PR_SET_PDEATHSIG in the server child, an atexit handler in the
   owner); the HTTP server is a libgreen green_server.  Also the
   N-greenlets workload the tests and the bench measure.  No Check here:
   the bench does not link it (the Check side is test/clienttest.h). */
#ifndef GREEN_SERVERS_H_INCLUDED
#define GREEN_SERVERS_H_INCLUDED

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <green.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procstat.h"

/* What a start function returns when a binary is genuinely missing:
   Automake's SKIP. */
#define TEST_SKIP 77

/* Bounds: a server that takes longer than this to come up has failed. */
#define TEST_SERVER_START_TIMEOUT 30.0
#define TEST_SERVER_STOP_TIMEOUT 5.0

struct test_server {
    const char *name;
    char dir[72];     /* private directory, removed by test_server_stop */
    char socket[108]; /* the unix socket clients connect to (sun_path) */
    pid_t pid;        /* the server process, 0 when none */
    pid_t owner;      /* the process that started it (Check forks tests) */
    int stop_signal;  /* postgres: SIGINT (fast); SIGTERM waits for
                         clients there */
};

/* The running servers, stopped by the owner's atexit handler. */
#define TEST_SERVERS_MAX 4
static struct test_server *test_servers[TEST_SERVERS_MAX];

static inline int test_rm_entry(const char *path, const struct stat *st,
                                int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Stop s (stop_signal, then SIGKILL after a bound) and remove its
   directory.  Only the owner does anything: a test child forked by
   Check that exits runs the same atexit handlers. */
static inline void test_server_stop(struct test_server *s)
{
    if (s->owner != getpid())
        return;
    if (s->pid > 0) {
        kill(s->pid, s->stop_signal);
        double give_up = test_now() + TEST_SERVER_STOP_TIMEOUT;
        while (waitpid(s->pid, NULL, WNOHANG) == 0) {
            if (test_now() > give_up) {
                kill(s->pid, SIGKILL);
                waitpid(s->pid, NULL, 0);
                break;
            }
            usleep(5000);
        }
        s->pid = 0;
    }
    if (s->dir[0])
        nftw(s->dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    s->dir[0] = '\0';
    for (int i = 0; i < TEST_SERVERS_MAX; i++)
        if (test_servers[i] == s)
            test_servers[i] = NULL;
}

static inline void test_servers_stop_all(void)
{
    for (int i = 0; i < TEST_SERVERS_MAX; i++)
        if (test_servers[i])
            test_server_stop(test_servers[i]);
}

/* Remember s for the atexit handler (registered once). */
static inline int test_server_register(struct test_server *s)
{
    static int registered;
    if (!registered && atexit(test_servers_stop_all) != 0)
        return -1;
    registered = 1;
    for (int i = 0; i < TEST_SERVERS_MAX; i++)
        if (!test_servers[i]) {
            test_servers[i] = s;
            return 0;
        }
    return -1;
}

/* A private directory under TMPDIR (or /tmp when TMPDIR is too long for
   a unix socket path), owned by `user` (NULL: the caller). */
static inline int test_server_mkdir(struct test_server *s, const char *name,
                                    const struct passwd *user)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->owner = getpid();
    s->stop_signal = SIGTERM;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || strlen(tmp) > 40)
        tmp = "/tmp";
    snprintf(s->dir, sizeof s->dir, "%s/green-%s.XXXXXX", tmp, name);
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "%s: mkdtemp %s: %s\n", name, s->dir,
                strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    if (test_server_register(s) != 0)
        return -1;
    if (user && chown(s->dir, user->pw_uid, user->pw_gid) != 0) {
        fprintf(stderr, "%s: chown: %s\n", name, strerror(errno));
        return -1;
    }
    return 0;
}

/* In a forked child: become `user` (when given), die with the parent
   (set after the credentials change, which clears it), send output to
   dir/<name>.log, exec argv.  Never returns. */
static inline void test_server_child(const struct test_server *s,
                                     const struct passwd *user,
                                     char *const argv[], pid_t parent)
{
    if (user && (setgroups(0, NULL) != 0 || setgid(user->pw_gid) != 0 ||
                 setuid(user->pw_uid) != 0))
        _exit(126);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    char log[160];
    snprintf(log, sizeof log, "%s/%s.log", s->dir, s->name);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int null = open("/dev/null", O_RDONLY);
    if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 ||
        dup2(fd, 2) < 0)
        _exit(126);
    execv(argv[0], argv);
    _exit(127);
}

static inline pid_t test_server_fork(const struct test_server *s,
                                     const struct passwd *user,
                                     char *const argv[])
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        test_server_child(s, user, argv, parent);
    if (pid < 0)
        fprintf(stderr, "%s: fork: %s\n", s->name, strerror(errno));
    return pid;
}

/* Print the server's log (after a failure). */
static inline void test_server_show_log(const struct test_server *s)
{
    char log[160], line[512];
    snprintf(log, sizeof log, "%s/%s.log", s->dir, s->name);
    FILE *f = fopen(log, "r");
    while (f && fgets(line, sizeof line, f))
        fprintf(stderr, "%s: %s", s->name, line);
    if (f)
        fclose(f);
}

/* Run argv to completion (initdb); 0 if it exited 0. */
static inline int test_server_run(const struct test_server *s,
                                  const struct passwd *user,
                                  char *const argv[])
{
    int status;
    pid_t pid = test_server_fork(s, user, argv);
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    fprintf(stderr, "%s: %s failed (status %d)\n", s->name, argv[0], status);
    test_server_show_log(s);
    return -1;
}

/* 1 once s->socket accepts a connection. */
static inline int test_server_accepts(const struct test_server *s)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", s->socket);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Start the server argv and wait (bounded) until ready(s) says yes; on
   failure print its log and stop it. */
static inline int test_server_spawn(struct test_server *s,
                                    const struct passwd *user,
                                    char *const argv[],
                                    int (*ready)(const struct test_server *))
{
    s->pid = test_server_fork(s, user, argv);
    if (s->pid < 0) {
        s->pid = 0;
        return -1;
    }
    double give_up = test_now() + TEST_SERVER_START_TIMEOUT;
    while (!ready(s)) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid || test_now() > give_up) {
            fprintf(stderr, "%s: %s did not start\n", s->name, argv[0]);
            if (waitpid(s->pid, NULL, WNOHANG) == s->pid)
                s->pid = 0;
            test_server_show_log(s);
            test_server_stop(s);
            return -1;
        }
        usleep(5000);
    }
    return 0;
}

/* The first executable among dir/name for the given dirs and names;
   a dir may be a glob pattern (the last match wins: the newest
   /usr/lib/postgresql/<version>). */
static inline int test_find_program(char *out, size_t size,
                                    const char *const dirs[],
                                    const char *const names[])
{
    for (int d = 0; dirs[d]; d++) {
        glob_t g;
        if (glob(dirs[d], 0, NULL, &g) != 0)
            continue;
        for (size_t i = g.gl_pathc; i-- > 0;)
            for (int n = 0; names[n]; n++) {
                snprintf(out, size, "%s/%s", g.gl_pathv[i], names[n]);
                if (access(out, X_OK) == 0) {
                    globfree(&g);
                    return 0;
                }
            }
        globfree(&g);
    }
    return -1;
}

/* The unprivileged account a server that refuses root runs as (NULL
   when not root).  *missing is set when root has no such account. */
static inline const struct passwd *test_server_user(const char *name,
                                                    int *missing)
{
    *missing = 0;
    if (geteuid() != 0)
        return NULL;
    const struct passwd *pw = getpwnam(name);
    *missing = pw == NULL;
    return pw;
}

/******************************************************************************/
/*  PostgreSQL                                                                */
/******************************************************************************/

/* Ready: the socket accepts and postmaster.pid says "ready" (before
   that, connections get "the database system is starting up"). */
static inline int test_pg_ready(const struct test_server *s)
{
    char path[160], buf[1024];
    snprintf(path, sizeof path, "%s/data/postmaster.pid", s->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, "ready") != NULL && test_server_accepts(s);
}

/* initdb (no fsync, trust) and postgres (-F: no fsync) on a unix socket only, in a
   private directory; the socket directory is s->dir.  0, TEST_SKIP
   (no PostgreSQL binaries, or root without a postgres account), -1. */
static inline int test_pg_start(struct test_server *s)
{
    static const char *const dirs[] = {"/usr/lib/postgresql/*/bin",
                                       "/usr/pgsql-*/bin", "/usr/bin",
                                       "/usr/local/bin", NULL};
    static const char *const initdb_names[] = {"initdb", NULL};
    static const char *const postgres_names[] = {"postgres", NULL};
    const char *env_dirs[2] = {getenv("PG_BINDIR"), NULL};
    char initdb[PATH_MAX], postgres[PATH_MAX];
    int missing;
    const struct passwd *user = test_server_user("postgres", &missing);
    const char *const *where = env_dirs[0] ? env_dirs : dirs;
    if (missing || test_find_program(initdb, sizeof initdb, where,
                                     initdb_names) != 0)
        return TEST_SKIP;
    snprintf(postgres, sizeof postgres, "%s", initdb);
    strcpy(strrchr(postgres, '/') + 1, postgres_names[0]);
    if (test_server_mkdir(s, "postgres", user) != 0)
        return -1;
    s->stop_signal = SIGINT;
    char data[160];
    snprintf(data, sizeof data, "%s/data", s->dir);
    snprintf(s->socket, sizeof s->socket, "%s/.s.PGSQL.5432", s->dir);
    char *init_argv[] = {initdb,    "-D",        data, "--no-sync", "-A",
                         "trust",   "-U",        "postgres",
                         "--no-instructions",    "-E", "UTF8", NULL};
    if (test_server_run(s, user, init_argv) != 0)
        return -1;
    char *run_argv[] = {postgres, "-D", data, "-k", s->dir,
                        "-c", "listen_addresses=", "-F",
                        "-c", "max_connections=20",
                        "-c", "shared_buffers=1MB", NULL};
    return test_server_spawn(s, user, run_argv, test_pg_ready);
}

/******************************************************************************/
/*  MariaDB                                                                   */
/******************************************************************************/

/* mariadbd on an empty data directory: with --skip-grant-tables it
   needs no mariadb-install-db (0.5 s saved) and no InnoDB (Aria only:
   32 KiB of files).  0, TEST_SKIP (no server binary), -1. */
static inline int test_mariadb_start(struct test_server *s)
{
    static const char *const dirs[] = {"/usr/sbin", "/usr/bin",
                                       "/usr/libexec", "/usr/local/sbin",
                                       "/usr/local/bin", NULL};
    static const char *const names[] = {"mariadbd", "mysqld", NULL};
    char server[PATH_MAX];
    if (test_find_program(server, sizeof server, dirs, names) != 0)
        return TEST_SKIP;
    if (test_server_mkdir(s, "mariadb", NULL) != 0)
        return -1;
    char data[160], datadir[192], socket[192], pidfile[192], log[192];
    snprintf(data, sizeof data, "%s/data", s->dir);
    if (mkdir(data, 0700) != 0)
        return -1;
    snprintf(s->socket, sizeof s->socket, "%s/sock", s->dir);
    snprintf(datadir, sizeof datadir, "--datadir=%s", data);
    snprintf(socket, sizeof socket, "--socket=%s", s->socket);
    snprintf(pidfile, sizeof pidfile, "--pid-file=%s/pid", s->dir);
    snprintf(log, sizeof log, "--log-error=%s/mariadb.log", s->dir);
    char *argv[] = {server, "--no-defaults", datadir, socket, pidfile, log,
                    "--skip-networking", "--skip-grant-tables",
                    "--skip-log-bin", "--skip-innodb",
                    "--default-storage-engine=Aria",
                    "--default-tmp-storage-engine=Aria",
                    geteuid() == 0 ? "--user=root" : "--skip-name-resolve",
                    NULL};
    return test_server_spawn(s, NULL, argv, test_server_accepts);
}

/******************************************************************************/
/*  Redis                                                                     */
/******************************************************************************/

/* redis-server ($REDIS_SERVER, or found in the usual places) on a unix
   socket only, no persistence.  0, TEST_SKIP (no redis-server), -1. */
static inline int test_redis_start(struct test_server *s)
{
    static const char *const dirs[] = {"/usr/bin", "/usr/sbin",
                                       "/usr/local/bin", NULL};
    static const char *const names[] = {"redis-server", NULL};
    const char *env = getenv("REDIS_SERVER");
    char server[PATH_MAX];
    if (env && *env)
        snprintf(server, sizeof server, "%s", env);
    else if (test_find_program(server, sizeof server, dirs, names) != 0)
        return TEST_SKIP;
    if (access(server, X_OK) != 0)
        return TEST_SKIP;
    if (test_server_mkdir(s, "redis", NULL) != 0)
        return -1;
    snprintf(s->socket, sizeof s->socket, "%s/sock", s->dir);
    char *argv[] = {server, "--port", "0", "--unixsocket", s->socket,
                    "--save", "", "--appendonly", "no", "--dir", s->dir,
                    "--daemonize", "no", NULL};
    return test_server_spawn(s, NULL, argv, test_server_accepts);
}

/******************************************************************************/
/*  A libgreen HTTP server for libcurl                                        */
/******************************************************************************/

/* A "200 OK" response with one more header line (no CRLF) and body, in
   out; its length. */
static inline int test_http_ok(char *out, size_t size, const char *header,
                               const char *body)
{
    return snprintf(out, size,
                    "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n%s\r\n\r\n%s",
                    strlen(body), header, body);
}

/* green_server handler: HTTP/1.1 with keep-alive; "GET /sleep/<ms>"
   sleeps that long (green_sleep), then answers with the path as the
   body, so a client can tell its own response from a stale one. */
static inline void test_http_handler(int fd, void *arg)
{
    (void)arg;
    char req[2048 + 1]; /* NUL-terminated for sscanf */
    size_t len = 0;
    for (;;) {
        char *end = memmem(req, len, "\r\n\r\n", 4);
        if (!end) {
            if (len == sizeof req - 1)
                return;
            ssize_t r = green_read(fd, req + len, sizeof req - 1 - len);
            if (r <= 0)
                return;
            len += (size_t)r;
            req[len] = '\0';
            continue;
        }
        char path[256] = "";
        long ms = 0;
        if (sscanf(req, "GET %255s", path) != 1)
            return;
        sscanf(path, "/sleep/%ld", &ms);
        if (green_sleep((double)ms / 1000) != 0)
            return;
        char resp[512];
        int n = test_http_ok(resp, sizeof resp, "Content-Type: text/plain",
                             path);
        if (green_write_all(fd, resp, (size_t)n) != n)
            return;
        size_t used = (size_t)(end + 4 - req);
        memmove(req, req + used, len - used);
        len -= used;
        req[len] = '\0';
    }
}

/******************************************************************************/
/*  The workload                                                              */
/******************************************************************************/

/* Run fn(args[i]) in n greenlets at once and wait for all of them
   (fn returns NULL on success, else a string saying what failed, which
   goes to stderr); returns the wall time, or -1 if one failed or took
   longer than `bound` seconds (they are killed then). */
static inline double test_run_concurrently(green_fn fn, void *const *args,
                                           size_t n, double bound)
{
    green_t *g[64];
    if (n > sizeof g / sizeof g[0])
        return -1;
    double t0 = test_now();
    for (size_t i = 0; i < n; i++)
        g[i] = green_spawn(fn, args[i]);
    int rc = green_joinall(g, n, bound);
    double el = test_now() - t0;
    if (rc != 0)
        green_killall(g, n, 1);
    for (size_t i = 0; i < n; i++) {
        if (!g[i]) {
            rc = -1;
            continue;
        }
        if (green_value(g[i]))
            fprintf(stderr, "greenlet %zu: %s\n", i,
                    (const char *)green_value(g[i]));
        rc |= green_error(g[i]) != 0 || green_value(g[i]) != NULL;
        green_release(g[i]);
    }
    return rc ? -1 : el;
}

/* test_run_concurrently with the same arg for each of the n greenlets. */
static inline double test_run_n(green_fn fn, void *arg, size_t n,
                                double bound)
{
    void *args[64];
    if (n > sizeof args / sizeof args[0])
        return -1;
    for (size_t i = 0; i < n; i++)
        args[i] = arg;
    return test_run_concurrently(fn, args, n, bound);
}

#endif
