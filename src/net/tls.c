#include "net/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

struct tls_context {
    SSL_CTX *ctx;
    char *cert_file;
    char *key_file;
};

/* ALPN wire format: length-prefixed names, in our order of preference. */
static const unsigned char alpn_offer[] = "\x02h2\x08http/1.1";

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_len,
                       const unsigned char *in, unsigned in_len, void *arg)
{
    (void)ssl;
    (void)arg;
    unsigned char *chosen = NULL;
    if (SSL_select_next_proto(&chosen, out_len, alpn_offer, sizeof(alpn_offer) - 1, in, in_len) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no common protocol: HTTP/1.1 without ALPN */
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

const char *tls_last_error(void)
{
    static char text[256];
    unsigned long err = ERR_get_error();
    if (err == 0)
        return "unknown";
    ERR_error_string_n(err, text, sizeof(text));
    ERR_clear_error();
    return text;
}

static SSL_CTX *build(const char *cert_file, const char *key_file, char *error, size_t error_size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(error, error_size, "cannot create a TLS context: %s", tls_last_error());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* TLS 1.2 suites HTTP/2 allows (RFC 9113, 9.2.2): forward secret AEAD
     * only. TLS 1.3 suites are all fine and stay OpenSSL's. */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    /* conn_flush() may move bytes a blocked SSL_write() will retry. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        snprintf(error, error_size, "cannot use TLS_CERT_FILE %s: %s", cert_file, tls_last_error());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(error, error_size, "cannot use TLS_KEY_FILE %s: %s", key_file, tls_last_error());
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(error, error_size, "TLS_KEY_FILE %s does not match TLS_CERT_FILE %s", key_file,
                 cert_file);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct tls_context *tls_context_new(const char *cert_file, const char *key_file, char *error,
                                    size_t error_size)
{
    struct tls_context *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    t->cert_file = strdup(cert_file);
    t->key_file = strdup(key_file);
    if (t->cert_file == NULL || t->key_file == NULL) {
        snprintf(error, error_size, "out of memory");
        tls_context_free(t);
        return NULL;
    }
    t->ctx = build(cert_file, key_file, error, error_size);
    if (t->ctx == NULL) {
        tls_context_free(t);
        return NULL;
    }
    return t;
}

bool tls_context_reload(struct tls_context *t, char *error, size_t error_size)
{
    SSL_CTX *fresh = build(t->cert_file, t->key_file, error, error_size);
    if (fresh == NULL)
        return false;
    SSL_CTX_free(t->ctx); /* open sessions hold their own reference */
    t->ctx = fresh;
    return true;
}

void tls_context_free(struct tls_context *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    free(t->cert_file);
    free(t->key_file);
    free(t);
}

SSL *tls_new_session(struct tls_context *t)
{
    return SSL_new(t->ctx);
}

const char *tls_selected_protocol(const SSL *ssl)
{
    const unsigned char *name = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl, &name, &len);
    if (len == 2 && memcmp(name, "h2", 2) == 0)
        return "h2";
    if (len == 8 && memcmp(name, "http/1.1", 8) == 0)
        return "http/1.1";
    return NULL;
}
