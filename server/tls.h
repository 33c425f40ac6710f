/* tls: the server's SSL_CTX, built once in the master before forking.
 *
 * TLS 1.2 and 1.3; ALPN offers h2 first, and a client that offers only http/1.1 (or no ALPN) gets
 * HTTP/1.1. */
#ifndef MOCKUPSTREAM_TLS_H
#define MOCKUPSTREAM_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Loads the PEM certificate chain and private key and checks that they match.
 * Returns the context, or NULL with one line in err naming the file and the problem. */
SSL_CTX *tls_context_create(const char *cert_path, const char *key_path, char *err, size_t err_size);

#endif
