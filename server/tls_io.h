/* tls_io: OpenSSL on a non-blocking socket for the project's own HTTP/1.1 loop.
 *
 * The loop speaks in plain-socket terms (bytes or -1 with errno EAGAIN); these functions keep those
 * terms over TLS so that cleartext and TLS HTTP/1.1 share one implementation of everything above
 * the byte stream (parsing, validation, holding, timeouts, draining). Reads go through a BIO of our
 * own that calls arrival_recv(), so a TLS request's delay runs from its kernel receive time exactly
 * as a cleartext one's does.
 *
 * Errors: OpenSSL's error queue is cleared after every failing call (a stale entry would make a
 * later, unrelated SSL_get_error() on another connection of the worker report a failure). */
#ifndef MOCKUPSTREAM_TLS_IO_H
#define MOCKUPSTREAM_TLS_IO_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "arrival.h"

/* What the BIO of one connection reads from and writes to. Must outlive the SSL object; the caller
 * sets fd and arrivals and zeroes the rest. */
struct tls_io_socket {
    int fd;
    struct arrival_reader *arrivals; /* the worker's: records each read's arrival */
    /* private */
    unsigned char *held;   /* the session ticket's record, held back to leave with the first response */
    uint32_t held_bytes;
    bool holding;          /* records written now are held (the deferred ticket is being written) */
    bool ticket_settled;   /* the deferred ticket was issued, or is not owed (TLS 1.2) */
};

/* Process-wide BIO method table; call once before forking. Returns 0, or -1 (out of memory). */
int tls_io_global_init(void);

/* A server-side SSL object reading and writing through `sock`. NULL if out of memory.
 *
 * Session tickets (TLS 1.3): one per connection, issued with the first response and sent in the same
 * send() as it, instead of OpenSSL's default two sent on their own right after the handshake. Each
 * ticket costs ~15 us of CPU (serialise, encrypt and MAC the session, one record) and a send() of its
 * own; one is all a client needs to resume the next connection (a resumed connection gets its one
 * replacement ticket the same way). The cost: a client that handshakes and leaves without a request
 * gets no ticket. */
SSL *tls_io_new(SSL_CTX *ctx, struct tls_io_socket *sock);

enum tls_io_step {
    TLS_IO_DONE,       /* the handshake is complete */
    TLS_IO_WANT_READ,  /* wait until the socket is readable, then call again */
    TLS_IO_WANT_WRITE, /* wait until the socket is writable, then call again */
    TLS_IO_FAILED,     /* the client left or the handshake failed (an alert was sent if possible) */
};

/* Advances the server handshake as far as the socket allows. */
enum tls_io_step tls_io_handshake(SSL *ssl);

/* Like recv(): > 0 bytes, 0 when the client closed (close_notify or EOF), -1 with errno EAGAIN
 * (nothing decrypted yet) or ECONNRESET (any other failure). */
ssize_t tls_io_read(SSL *ssl, void *buf, size_t size);

/* Like writev() on up to two buffers: bytes taken (possibly fewer), or -1 with errno EAGAIN or EPIPE.
 * After EAGAIN the caller must offer the same bytes again (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets
 * them come from another address). Two small buffers are joined into one TLS record. The first call
 * with bytes also sends the session ticket (see tls_io_new). */
ssize_t tls_io_writev(SSL *ssl, const struct iovec *iov, int iov_count);

/* True if OpenSSL holds input not yet returned by tls_io_read (decrypted or still raw): the socket
 * will not signal it again, so the caller must read on without waiting for readiness. */
bool tls_io_pending(SSL *ssl);

/* Sends close_notify once, if the socket takes it now (never waits). */
void tls_io_shutdown(SSL *ssl);

/* tls_io_shutdown, then frees the SSL object. The caller closes the socket. */
void tls_io_close(SSL *ssl);

#endif
