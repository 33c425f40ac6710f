#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

static SSL_CTX *tls_fail(SSL_CTX *ctx, char *err, size_t err_size, const char *what, const char *path)
{
    char reason[160];
    ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
    snprintf(err, err_size, "%s '%s': %s (allowed: a PEM file matching the other TLS file)", what, path, reason);
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* Protocols this server speaks, most preferred first, in ALPN wire form (length-prefixed). */
static const unsigned char served_protocols[] = "\x02h2\x08http/1.1\x08http/1.0";

static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *out_len, const unsigned char *offered,
                          unsigned int offered_len, void *arg)
{
    /* server preference: the first of ours that the client offers */
    for (size_t i = 0; i < sizeof(served_protocols) - 1; i += 1 + served_protocols[i]) {
        const unsigned char *ours = served_protocols + i;
        for (unsigned j = 0; j < offered_len; j += 1u + offered[j]) {
            if (j + 1u + offered[j] > offered_len)
                break; /* malformed list: OpenSSL has validated it, but stay inside it regardless */
            if (offered[j] == ours[0] && memcmp(offered + j + 1, ours + 1, ours[0]) == 0) {
                *out = offered + j + 1;
                *out_len = offered[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* OpenSSL sends no_application_protocol */
}

SSL_CTX *tls_context_create(const char *cert_path, const char *key_path, char *err, size_t err_size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return tls_fail(NULL, err, err_size, "cannot create a TLS context for", cert_path);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    /* The HTTP/1.1 path writes as a plain socket would: partial writes, and a retry may come from a
     * copy of the unwritten bytes. Buffers are released while a connection is idle (nginx does the
     * same): an idle keep-alive TLS connection then costs a few KiB instead of ~70 KiB. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1)
        return tls_fail(ctx, err, err_size, "--tls-cert: cannot use", cert_path);
    if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1)
        return tls_fail(ctx, err, err_size, "--tls-key: cannot use", key_path);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return tls_fail(ctx, err, err_size, "--tls-key: does not match the certificate", key_path);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);
    /* Resumption by ticket only (stateless: any worker can resume what another issued). OpenSSL's
     * built-in session cache is per process, so with SO_REUSEPORT spreading reconnects over the
     * workers it would mostly miss, while every full handshake paid to insert into it. nginx's
     * default ("ssl_session_cache none") makes the same choice. The HTTP/1.1 path issues one TLS 1.3
     * ticket per connection, with its first response (tls_io_new); h2o's keeps OpenSSL's two. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}
