/* Address helpers shared by net.c and server.c. */
#ifndef GREEN_NET_H_INCLUDED
#define GREEN_NET_H_INCLUDED

#include <netdb.h>

/* Resolve host/port for a stream socket: numeric first
   (AI_NUMERICHOST, never blocks), then a real lookup ("localhost",
   /etc/hosts, DNS) in the threadpool when the caller can wait, else a
   plain getaddrinfo that blocks the thread.  passive: for bind.  Returns 0
   or -1 with errno: EINVAL (port outside 0..65535), ENOENT (no such
   host), ENOMEM.  Free *res with freeaddrinfo. */
int green__resolve(const char *host, int port, int passive,
                   struct addrinfo **res);

/* 1 if host is NULL or a numeric IPv4/IPv6 address: resolving it never
   blocks, so no worker thread is needed.  The one numeric-host check
   of libgreen and libgreen-patch. */
int green__numeric_host(const char *host);

/* socket(family, SOCK_STREAM) non-blocking and close-on-exec, already
   known to io.c.  Returns the fd or -1 with errno. */
int green__socket(int family);

#endif
