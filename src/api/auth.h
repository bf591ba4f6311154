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
 *     be used as an HMAC secret. exp, nbf and iat are RFC 7519 NumericDates
 *     (fractions allowed, up to the end of year 9999), checked with a
 *     leeway of JWT_LEEWAY_SECONDS for clock skew; a token without exp is
 *     refused unless JWT_ALLOW_NO_EXP; aud must name JWT_AUDIENCE and iss
 *     equal JWT_ISSUER when those are set. The consumers are the claim
 *     JWT_CONSUMER_CLAIM (default "sub"): a string, or an array of strings
 *     for a credential that may read several consumers.
 *   - a static API key ("sk_..."), mapped to one or more consumer ids by the
 *     file API_KEYS_FILE (lines "sk_... consumer-id [consumer-id ...]",
 *     '#' comments on lines of their own), for server-to-server clients.
 *     Keys never expire.
 *
 * A credential names at most AUTH_MAX_CONSUMERS consumers, each valid as
 * request_consumer_id_valid() says with consumer_id_max_bytes; a name
 * given twice counts once.
 *
 * Tokens can also be issued (auth_issue_token, auth_issue_token_for): an
 * HS256 JWT for the consumers of an API key, short-lived, so that a browser
 * never holds a long-lived key.
 * Such a token carries "piper": "connect": it authorises opening a stream,
 * and the stream keeps running after the token expires (any other JWT's
 * stream ends at its exp).
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
    const char *audience;      /* empty: aud not checked */
    const char *issuer;        /* empty: iss not checked */
    bool allow_no_exp;
    int leeway_seconds;
    int consumer_id_max_bytes; /* every consumer a credential names is checked against it */
};

#define AUTH_MAX_CONSUMERS 1000

enum auth_result {
    AUTH_OK,
    AUTH_INVALID, /* malformed, bad signature, algorithm refused, claim missing */
    AUTH_EXPIRED, /* exp passed (or nbf not reached) */
};

/* Owned by whoever filled it: release with auth_identity_clear(). A
 * zeroed identity holds nothing and may be cleared. */
struct auth_identity {
    char *consumer_id;     /* consumer_ids[0], not a copy: never free it alone */
    char **consumer_ids;   /* distinct, in the credential's order; each owned */
    size_t consumer_count; /* at least 1 once auth_check() said AUTH_OK */
    int64_t expires_at;    /* Unix seconds; 0 when the credential never expires */
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

/* Whether the identity may read consumer's events (false for NULL). */
bool auth_identity_allows(const struct auth_identity *id, const char *consumer);

/* Issues an HS256 JWT for consumer_id valid for ttl_seconds from now (with
 * iss and aud when configured). Returns a token to free(), or NULL when no
 * HS256 secret is configured or out of memory. */
char *auth_issue_token(const struct auth *a, const char *consumer_id, int ttl_seconds, time_t now)
    __attribute__((warn_unused_result));

/* The same for every consumer of id: the consumer claim is a string when
 * there is one, an array (in id's order) when there are several. NULL also
 * when id names no consumer. */
char *auth_issue_token_for(const struct auth *a, const struct auth_identity *id, int ttl_seconds,
                           time_t now) __attribute__((warn_unused_result));
bool auth_can_issue(const struct auth *a);

#endif
