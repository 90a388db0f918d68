/* gevent's echo server: every connection gets its own greenlet that
   sends back whatever it reads.  Usage: echo_server PORT (0 picks a
   free port); it prints "listening on 127.0.0.1:PORT" and serves until
   killed. */
#include <green.h>

#include "serve_main.h"

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
    return serve_main(argc, argv, echo);
}
