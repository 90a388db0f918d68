/* gevent's echo server: every connection gets its own greenlet that
   sends back whatever it reads.  Usage: echo_server PORT (0 picks a
   free port); it prints "listening on 127.0.0.1:PORT" and serves until
   killed. */
#include <green.h>
#include <stdio.h>
#include <stdlib.h>

static void echo(int fd, void *arg)
{
    (void)arg;
    char buf[4096];
    ssize_t n;
    while ((n = green_read(fd, buf, sizeof buf)) > 0)
        if (green_write_all(fd, buf, (size_t)n) < 0)
            break;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", atoi(argv[1]));
    green_server_t *s = green_server_new(addr, echo, NULL);
    if (!s) {
        perror("green_server_new");
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", green_server_port(s));
    fflush(stdout);
    if (green_server_serve_forever(s) != 0) {
        perror("green_server_serve_forever");
        return 1;
    }
    green_server_free(s);
    return 0;
}
