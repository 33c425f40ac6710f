/* listener: the listening sockets, created by the master before forking.
 *
 * Each worker gets its own SO_REUSEPORT socket per configured address, so the kernel spreads new
 * connections over workers without a shared accept queue. The master keeps every socket open: a
 * worker that dies and is restarted takes over the same socket, so connections waiting in its
 * accept queue are not lost and no listener disappears. */
#ifndef MOCKUPSTREAM_LISTENER_H
#define MOCKUPSTREAM_LISTENER_H

#include <stddef.h>

#include "config.h"

/* Fails with EADDRINUSE-style text if anything (even another SO_REUSEPORT group of the same user)
 * already holds the address. Returns 0, or -1 with one line in err. */
int listener_check_free(const struct config_listener *listener, char *err, size_t err_size);

/* Opens a non-blocking SO_REUSEPORT socket listening on the address. Returns the fd, or -1 with err. */
int listener_open(const struct config_listener *listener, int backlog, char *err, size_t err_size);

/* net.core.somaxconn, or -1 if it cannot be read. */
int listener_somaxconn(void);

#endif
