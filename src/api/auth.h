/*
 * auth: who is asking, from a bearer credential. Off unless configured.
 *
 * Two kinds of credential, both sent as "Authorization: Bearer <value>" or
 * ?access_token=<value> (browsers' EventSource cannot send headers):
 *
 *   - a JWT signed with HS256 (JWT_HS256_SECRET) or RS256 (the public key
 *     in JWT_RS256_PUBLIC_KEY_FILE), verified by libjwt. The algorithm is
 *     read from the token's header only to choose among the configured
 *     keys, and must match the key's algorithm: "none" and any algorithm
 *     without a configured key are refused, so a public RSA key can never
 *     be used as an HMAC secret. exp and nbf are enforced; the consumer id
 *     is the string claim JWT_CONSUMER_CLAIM (default "sub").
 *   - a static API key ("sk_..."), mapped to a consumer id by the file
 *     API_KEYS_FILE (lines "sk_... consumer-id", '#' comments), for
 *     server-to-server clients. Keys never expire.
 *
 * Pure apart from reading the key files at creation.
 */
#ifndef PIPER_AUTH_H
#define PIPER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct auth_options {
    const char *hs256_secret;   /* empty: HS256 off */
    const char *rs256_key_file; /* empty: RS256 off */
    const char *consumer_claim;
    const char *api_keys_file; /* empty: no API keys */
};

enum auth_result {
    AUTH_OK,
    AUTH_INVALID, /* malformed, bad signature, algorithm refused, claim missing */
    AUTH_EXPIRED, /* exp passed (or nbf not reached) */
};

struct auth_identity {
    char *consumer_id;  /* owned: release with auth_identity_clear() */
    int64_t expires_at; /* Unix seconds; 0 when the credential never expires */
};

struct auth;

/* Returns NULL (auth off) when nothing is configured, and sets *error to a
 * one-line reason when a key file cannot be used (the service then stops). */
struct auth *auth_new(const struct auth_options *options, char *error, size_t error_size);
void auth_free(struct auth *a);

/* Checks credential at time now. On AUTH_OK fills id; otherwise *why is a
 * short static reason for the 401 body. */
enum auth_result auth_check(const struct auth *a, const char *credential, time_t now,
                            struct auth_identity *id, const char **why);

void auth_identity_clear(struct auth_identity *id);

#endif
