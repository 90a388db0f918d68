/* The tutorial's Redis claim: the ordinary blocking hiredis client
   (redisConnect, redisCommand: no async API, no hiredis change)
   cooperates with every other greenlet once green_patch_all() is on.

     1. before green_patch_all: N greenlets each BLPOP an empty key with a
        1 s timeout; each call blocks the whole thread, so about N s;
     2. after it: 10 greenlets do the same and finish in about 1 s;
     3. 50 greenlets, one connection each, 1,000 SET/GET pairs each, every
        reply checked;
     4. the same 50,000 pairs from a single greenlet, for comparison.

   Usage: redis_concurrent [-h HOST] [-p PORT] [-u N] [-w WORKERS] [-n PAIRS]
          redis_concurrent -p PORT --ping    (wait up to 10 s for PONG)
   -u N: greenlets in the unpatched phase (default 10, 0 skips it). */
#include <errno.h>
#include <green.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1";
static int port = 6379;
static int pairs = 1000;
static int pid; /* keys carry it: concurrent runs do not collide */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static redisContext *connect_redis(void)
{
    redisContext *c = redisConnect(host, port);
    if (!c || c->err) {
        fprintf(stderr, "redisConnect %s:%d: %s\n", host, port,
                c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

/* BLPOP an empty key with a 1 s timeout: a nil reply after 1 s. */
static void *blpop(void *arg)
{
    int id = (int)(long)arg;
    redisContext *c = connect_redis();
    if (!c)
        return (void *)1;
    redisReply *r = redisCommand(c, "BLPOP green:empty:%d:%d 1", pid, id);
    int bad = !r || r->type != REDIS_REPLY_NIL;
    if (bad)
        fprintf(stderr, "BLPOP %d: unexpected reply\n", id);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return (void *)(long)bad;
}

/* `pairs` SET/GET pairs on keys of its own; every reply is checked. */
static void *setget(void *arg)
{
    int id = (int)(long)arg;
    redisContext *c = connect_redis();
    if (!c)
        return (void *)1;
    char key[64], val[64];
    long bad = 0;
    for (int i = 0; i < pairs && !bad; i++) {
        snprintf(key, sizeof key, "green:%d:%d:%d", pid, id, i % 16);
        snprintf(val, sizeof val, "value-%d-%d", id, i);
        redisReply *r = redisCommand(c, "SET %s %s", key, val);
        if (!r || r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK")) {
            fprintf(stderr, "SET %s: unexpected reply\n", key);
            bad = 1;
        }
        if (r)
            freeReplyObject(r);
        r = redisCommand(c, "GET %s", key);
        if (!r || r->type != REDIS_REPLY_STRING || strcmp(r->str, val)) {
            fprintf(stderr, "GET %s: expected %s\n", key, val);
            bad = 1;
        }
        if (r)
            freeReplyObject(r);
    }
    for (int i = 0; i < 16 && i < pairs; i++) {
        redisReply *r = redisCommand(c, "DEL green:%d:%d:%d", pid, id, i);
        if (r)
            freeReplyObject(r);
    }
    redisFree(c);
    return (void *)bad;
}

/* Run n greenlets of fn; returns the elapsed time, or -1 on failure. */
static double run(green_fn fn, int n)
{
    green_t **g = calloc((size_t)n, sizeof *g);
    if (!g)
        return -1;
    double t0 = now();
    int failed = 0;
    for (int i = 0; i < n; i++)
        if (!(g[i] = green_spawn(fn, (void *)(long)i))) {
            perror("green_spawn");
            failed = 1;
            break;
        }
    if (green_joinall(g, (size_t)n, -1) != 0) {
        perror("green_joinall");
        failed = 1;
    }
    double t = now() - t0;
    for (int i = 0; i < n && g[i]; i++) {
        if (green_value(g[i]) != NULL || green_error(g[i]) != 0)
            failed = 1;
        green_release(g[i]);
    }
    free(g);
    return failed ? -1 : t;
}

/* --ping: wait until the server answers (the test starts it), then
   print its process id, so that the test knows it reached its own
   server and not another one on the same port. */
static int ping(void)
{
    double end = now() + 10;
    while (now() < end) {
        redisContext *c = redisConnect(host, port);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "INFO server");
            const char *pid = NULL;
            if (r && r->type == REDIS_REPLY_STRING)
                pid = strstr(r->str, "process_id:");
            if (pid)
                printf("%ld\n", strtol(pid + 11, NULL, 10));
            if (r)
                freeReplyObject(r);
            redisFree(c);
            if (pid)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        usleep(50000);
    }
    fprintf(stderr, "no redis-server answering on %s:%d\n", host, port);
    return 1;
}

int main(int argc, char **argv)
{
    int unpatched = 10, workers = 50, do_ping = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-p") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-h") && i + 1 < argc)
            host = argv[++i];
        else if (!strcmp(argv[i], "-u") && i + 1 < argc)
            unpatched = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-w") && i + 1 < argc)
            workers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            pairs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ping"))
            do_ping = 1;
        else {
            fprintf(stderr, "usage: %s [-h HOST] [-p PORT] [-u N] "
                            "[-w WORKERS] [-n PAIRS] [--ping]\n", argv[0]);
            return 2;
        }
    }
    if (do_ping)
        return ping();
    pid = (int)getpid();

    int rc = 0;
    double t;
    printf("green_patch_active() = %d\n", green_patch_active());
    if (unpatched > 0) {
        t = run(blpop, unpatched);
        printf("unpatched: %d greenlets x BLPOP 1 s: %.2f s\n", unpatched, t);
        rc |= t < 0;
    }

    if (green_patch_all() != 0) {
        perror("green_patch_all");
        return 1;
    }
    printf("green_patch_active() = %d\n", green_patch_active());
    t = run(blpop, 10);
    printf("patched: 10 greenlets x BLPOP 1 s: %.2f s\n", t);
    rc |= t < 0;

    t = run(setget, workers);
    printf("patched: %d greenlets x %d SET/GET pairs: %.2f s, %.0f pairs/s\n",
           workers, pairs, t, t > 0 ? workers * pairs / t : 0);
    rc |= t < 0;

    /* The same workload from one greenlet (one connection). */
    int per = pairs;
    pairs = workers * per;
    t = run(setget, 1);
    printf("patched: 1 greenlet x %d SET/GET pairs: %.2f s, %.0f pairs/s\n",
           pairs, t, t > 0 ? pairs / t : 0);
    rc |= t < 0;

    green_shutdown();
    if (rc)
        fprintf(stderr, "redis_concurrent: FAILED\n");
    return rc;
}
