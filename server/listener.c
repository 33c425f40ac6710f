#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int listener_check_free(const struct config_listener *listener, char *err, size_t err_size)
{
    /* Without SO_REUSEPORT this bind fails if any socket holds the address, including the
     * SO_REUSEPORT group of a second mockupstream, which our own reuseport sockets would silently join. */
    int fd = socket(listener->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_size, "%s: socket: %s", listener->text, strerror(errno));
        return -1;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (listener->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    int rc = bind(fd, (const struct sockaddr *)&listener->addr, listener->addr_len);
    int saved = errno;
    close(fd);
    if (rc != 0) {
        snprintf(err, err_size, "cannot listen on %s: %s%s", listener->text, strerror(saved),
                 saved == EADDRINUSE ? " (another server holds this address; stop it or pick another --listen)" : "");
        return -1;
    }
    return 0;
}

int listener_open(const struct config_listener *listener, int backlog, char *err, size_t err_size)
{
    int fd = socket(listener->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_size, "%s: socket: %s", listener->text, strerror(errno));
        return -1;
    }
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        /* receive timestamps, inherited by accepted sockets: delays run from a request's arrival */
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) != 0 ||
        (listener->addr.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0)) {
        snprintf(err, err_size, "%s: setsockopt: %s", listener->text, strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (const struct sockaddr *)&listener->addr, listener->addr_len) != 0 || listen(fd, backlog) != 0) {
        snprintf(err, err_size, "cannot listen on %s: %s", listener->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int listener_somaxconn(void)
{
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    int value = -1;
    if (f != NULL) {
        if (fscanf(f, "%d", &value) != 1)
            value = -1;
        fclose(f);
    }
    return value;
}
