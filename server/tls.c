#include "tls.h"

#include <stdio.h>

#include <h2o.h>
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

SSL_CTX *tls_context_create(const char *cert_path, const char *key_path, char *err, size_t err_size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return tls_fail(NULL, err, err_size, "cannot create a TLS context for", cert_path);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1)
        return tls_fail(ctx, err, err_size, "--tls-cert: cannot use", cert_path);
    if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1)
        return tls_fail(ctx, err, err_size, "--tls-key: cannot use", key_path);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return tls_fail(ctx, err, err_size, "--tls-key: does not match the certificate", key_path);
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}
