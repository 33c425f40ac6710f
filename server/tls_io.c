#include "tls_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>

/* Joining head and body into one record costs a copy and saves a record and a write() per response;
 * above this the copy costs more than the record. */
#define JOIN_MAX_BYTES (16 * 1024)

/* Created once before forking, read-only afterwards (OpenSSL keeps a pointer to it in each BIO). */
static BIO_METHOD *socket_method;

static int bio_read(BIO *bio, char *buf, int size)
{
    struct tls_io_socket *sock = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    ssize_t n = arrival_recv(sock->arrivals, sock->fd, buf, (size_t)size);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        BIO_set_retry_read(bio);
    return (int)n;
}

/* Appends a record to the held bytes (the deferred ticket; see tls_io_new). */
static int hold_record(struct tls_io_socket *sock, const char *buf, int size)
{
    unsigned char *held = realloc(sock->held, sock->held_bytes + (size_t)size);
    if (held == NULL)
        return -1;
    memcpy(held + sock->held_bytes, buf, (size_t)size);
    sock->held = held;
    sock->held_bytes += (uint32_t)size;
    return size;
}

/* Sends the held bytes and then buf in one sendmsg(). Returns bytes of buf taken (> 0), or -1 with
 * the BIO's retry flag set if the kernel took only held bytes (what is left of them stays held). */
static int send_held_then(BIO *bio, struct tls_io_socket *sock, const char *buf, int size)
{
    struct iovec iov[2] = {{sock->held, sock->held_bytes}, {(void *)buf, (size_t)size}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t n = sendmsg(sock->fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            BIO_set_retry_write(bio);
        return -1;
    }
    if ((size_t)n < sock->held_bytes) {
        memmove(sock->held, sock->held + n, sock->held_bytes - (size_t)n);
        sock->held_bytes -= (uint32_t)n;
        BIO_set_retry_write(bio);
        return -1;
    }
    n -= (ssize_t)sock->held_bytes;
    free(sock->held);
    sock->held = NULL;
    sock->held_bytes = 0;
    if (n == 0) {
        BIO_set_retry_write(bio);
        return -1;
    }
    return (int)n;
}

static int bio_write(BIO *bio, const char *buf, int size)
{
    struct tls_io_socket *sock = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (sock->holding)
        return hold_record(sock, buf, size);
    if (sock->held_bytes != 0)
        return send_held_then(bio, sock, buf, size);
    ssize_t n = send(sock->fd, buf, (size_t)size, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        BIO_set_retry_write(bio);
    return (int)n;
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    /* OpenSSL flushes after each flight of handshake messages. Writes are unbuffered here, except the
     * held ticket, which leaves with the next record written (and must not leave on its own). */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

int tls_io_global_init(void)
{
    if (socket_method != NULL)
        return 0;
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mockupstream stamped socket");
    if (m == NULL || !BIO_meth_set_read(m, bio_read) || !BIO_meth_set_write(m, bio_write) || !BIO_meth_set_ctrl(m, bio_ctrl) ||
        !BIO_meth_set_create(m, bio_create)) {
        BIO_meth_free(m);
        return -1;
    }
    socket_method = m;
    return 0;
}

SSL *tls_io_new(SSL_CTX *ctx, struct tls_io_socket *sock)
{
    SSL *ssl = SSL_new(ctx);
    BIO *bio = ssl != NULL ? BIO_new(socket_method) : NULL;
    if (bio == NULL) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(bio, sock);
    SSL_set_bio(ssl, bio, bio);
    /* One recv() per request instead of two (record header, then record): OpenSSL reads what the
     * socket has. What it reads beyond the current record waits inside OpenSSL, where epoll cannot
     * see it: callers must check tls_io_pending() after each read. Only here, not on the shared
     * context: h2o 2.2.5 decides whether to read on from SSL_pending() alone. */
    SSL_set_read_ahead(ssl, 1);
    /* no tickets right after the handshake: one is issued with the first response (issue_ticket) */
    SSL_set_num_tickets(ssl, 0);
    SSL_set_accept_state(ssl);
    return ssl;
}

enum tls_io_step tls_io_handshake(SSL *ssl)
{
    int r = SSL_do_handshake(ssl);
    if (r == 1)
        return TLS_IO_DONE;
    int error = SSL_get_error(ssl, r);
    ERR_clear_error();
    switch (error) {
    case SSL_ERROR_WANT_READ: return TLS_IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return TLS_IO_WANT_WRITE;
    default: return TLS_IO_FAILED;
    }
}

ssize_t tls_io_read(SSL *ssl, void *buf, size_t size)
{
    size_t n = 0;
    if (SSL_read_ex(ssl, buf, size, &n) == 1)
        return (ssize_t)n;
    int error = SSL_get_error(ssl, 0);
    ERR_clear_error();
    switch (error) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* a TLS 1.3 key update wants its answer out; the loop watches both */
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0)
            return 0; /* EOF without close_notify: as good as a close for a request/response server */
        /* fall through */
    default:
        errno = ECONNRESET;
        return -1;
    }
}

static ssize_t write_once(SSL *ssl, const void *buf, size_t len)
{
    size_t n = 0;
    if (SSL_write_ex(ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    int error = SSL_get_error(ssl, 0);
    ERR_clear_error();
    errno = error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ ? EAGAIN : EPIPE;
    return -1;
}

/* Writes the connection's one session ticket into the held bytes, so that the record written next
 * (the first response) carries it out in the same sendmsg(). TLS 1.3 only: TLS 1.2 tickets are part
 * of the handshake. SSL_new_session_ticket() only queues the ticket; SSL_do_handshake() writes it at
 * once (OpenSSL would otherwise write and flush it on its own at the start of the next SSL_write). */
static void issue_ticket(SSL *ssl)
{
    struct tls_io_socket *sock = BIO_get_data(SSL_get_wbio(ssl));
    sock->ticket_settled = true;
    if (SSL_version(ssl) != TLS1_3_VERSION || SSL_new_session_ticket(ssl) != 1) {
        ERR_clear_error();
        return;
    }
    sock->holding = true;
    if (SSL_do_handshake(ssl) != 1) /* only out of memory: the write that follows fails too */
        ERR_clear_error();
    sock->holding = false;
}

ssize_t tls_io_writev(SSL *ssl, const struct iovec *iov, int iov_count)
{
    size_t total = 0;
    for (int i = 0; i < iov_count; i++)
        total += iov[i].iov_len;
    if (total != 0 && !((struct tls_io_socket *)BIO_get_data(SSL_get_wbio(ssl)))->ticket_settled)
        issue_ticket(ssl);
    if (iov_count == 2 && iov[0].iov_len != 0 && iov[1].iov_len != 0 && total <= JOIN_MAX_BYTES) {
        char joined[JOIN_MAX_BYTES];
        memcpy(joined, iov[0].iov_base, iov[0].iov_len);
        memcpy(joined + iov[0].iov_len, iov[1].iov_base, iov[1].iov_len);
        return write_once(ssl, joined, total);
    }
    size_t written = 0;
    for (int i = 0; i < iov_count; i++) {
        if (iov[i].iov_len == 0)
            continue;
        ssize_t n = write_once(ssl, iov[i].iov_base, iov[i].iov_len);
        if (n < 0)
            return written != 0 ? (ssize_t)written : -1;
        written += (size_t)n;
        if ((size_t)n < iov[i].iov_len)
            break;
    }
    return (ssize_t)written;
}

bool tls_io_pending(SSL *ssl)
{
    return SSL_has_pending(ssl) == 1;
}

void tls_io_shutdown(SSL *ssl)
{
    /* once: a second SSL_shutdown would wait for (read) the client's close_notify */
    if (SSL_is_init_finished(ssl) && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
        SSL_shutdown(ssl); /* one attempt: a client that does not read its socket gets no close_notify */
    ERR_clear_error();
}

void tls_io_close(SSL *ssl)
{
    tls_io_shutdown(ssl);
    struct tls_io_socket *sock = BIO_get_data(SSL_get_wbio(ssl));
    free(sock->held); /* a ticket that never got out (the client stopped reading) */
    sock->held = NULL;
    sock->held_bytes = 0;
    SSL_free(ssl);
}
