/* tls: the server's SSL_CTX, built once in the master before forking, shared by both TLS paths.
 *
 * TLS 1.2 and 1.3. ALPN (RFC 7301) is selected here for both paths: "h2" when offered (those
 * connections are handed to libh2o, see tls_hello.h), else "http/1.1" or "http/1.0", else no ALPN if
 * the client sent none. A client that offers ALPN with none of these gets the fatal
 * no_application_protocol alert RFC 7301 3.2 asks for, instead of a connection it cannot use. */
#ifndef MOCKUPSTREAM_TLS_H
#define MOCKUPSTREAM_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Loads the PEM certificate chain and private key and checks that they match.
 * Returns the context, or NULL with one line in err naming the file and the problem. */
SSL_CTX *tls_context_create(const char *cert_path, const char *key_path, char *err, size_t err_size);

#endif
