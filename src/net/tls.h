/*
 * tls: the service's TLS context (OpenSSL), when TLS_CERT_FILE and
 * TLS_KEY_FILE are set.
 *
 * TLS 1.2 and later; ALPN offers h2 and http/1.1 (a client offering
 * neither, or no ALPN at all, gets HTTP/1.1). The certificate chain and key
 * are read at start and again on SIGHUP by tls_context_reload(): new
 * handshakes use the new pair, connections already open keep theirs
 * (OpenSSL counts each session's reference to its context), so no stream is
 * dropped. A reload that fails keeps the previous pair.
 */
#ifndef PIPER_TLS_H
#define PIPER_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct tls_context;

/* NULL with error filled (naming the file) when the pair cannot be used. */
struct tls_context *tls_context_new(const char *cert_file, const char *key_file, char *error,
                                    size_t error_size);
bool tls_context_reload(struct tls_context *t, char *error, size_t error_size)
    __attribute__((warn_unused_result));
void tls_context_free(struct tls_context *t);

/* A server session on the current context; NULL when out of memory. */
SSL *tls_new_session(struct tls_context *t);

/* "h2" or "http/1.1" as ALPN chose, or NULL. */
const char *tls_selected_protocol(const SSL *ssl);

/* The oldest error on OpenSSL's queue as text (cleared), for logs. */
const char *tls_last_error(void);

#endif
