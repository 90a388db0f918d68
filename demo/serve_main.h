/* The main() of the green_server demos (echo_server, http_hello; its
   parts for https_hello): serve handler on 127.0.0.1:PORT, PORT from the
   command line (0 picks a free port); prints "listening on
   127.0.0.1:PORT" and serves until killed. */
#ifndef SERVE_MAIN_H_INCLUDED
#define SERVE_MAIN_H_INCLUDED

#include <green.h>
#include <stdio.h>
#include <stdlib.h>

/* Announce s (NULL: creating it failed, see errno), serve until
   killed, free it; the exit status. */
static inline int serve_server(green_server_t *s)
{
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

/* "127.0.0.1:PORT" for the PORT argument. */
static inline void serve_address(char *addr, size_t n, const char *port)
{
    snprintf(addr, n, "127.0.0.1:%d", atoi(port));
}

static inline int serve_main(int argc, char **argv,
                             void (*handler)(int fd, void *arg))
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    char addr[64];
    serve_address(addr, sizeof addr, argv[1]);
    return serve_server(green_server_new(addr, handler, NULL));
}

#endif
