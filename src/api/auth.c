/*
 * Credential checks. Signature verification is libjwt's (OpenSSL inside);
 * this file only decides which key applies and enforces the claims.
 */
#include "api/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>

#include "api/request.h"

#define API_KEY_PREFIX "sk_"
#define API_KEY_MIN_BYTES 16 /* the prefix and 13 characters */
#define API_KEY_MAX_BYTES 511
#define KEY_FILE_MAX (64 * 1024)
#define HEADER_MAX 1024
/* What separates the words of an API keys file line. */
#define BLANKS " \t\v\f\r"

#define STRINGIFY(x) #x
#define DECIMAL(x) STRINGIFY(x)

struct api_key {
    char *key;
    size_t key_len;
    struct auth_identity consumers; /* never expires */
};

struct auth {
    char *audience; /* NULL: not checked */
    char *issuer;   /* NULL: not checked */
    bool allow_no_exp;
    int leeway_seconds;
    int consumer_id_max_bytes;
    unsigned char *hs256_secret;
    size_t hs256_secret_len;
    unsigned char *rs256_key; /* PEM text */
    size_t rs256_key_len;
    char *consumer_claim;
    struct api_key *api_keys;
    size_t api_key_count;
};

static char *read_file(const char *path, size_t *len, char *error, size_t error_size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(error, error_size, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(KEY_FILE_MAX + 1);
    size_t n = buf != NULL ? fread(buf, 1, KEY_FILE_MAX + 1, f) : 0;
    bool failed = buf == NULL || ferror(f) || n > KEY_FILE_MAX;
    fclose(f);
    if (failed) {
        snprintf(error, error_size, "cannot read %s (larger than %d bytes?)", path, KEY_FILE_MAX);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Appends a copy of consumer to id's list, as it is. False: out of memory
 * (id unchanged). */
static bool identity_append(struct auth_identity *id, const char *consumer)
{
    char *copy = strdup(consumer);
    char **grown =
        copy != NULL ? realloc(id->consumer_ids, (id->consumer_count + 1) * sizeof(*grown)) : NULL;
    if (grown == NULL) {
        free(copy);
        return false;
    }
    grown[id->consumer_count++] = copy;
    id->consumer_ids = grown;
    id->consumer_id = grown[0];
    return true;
}

/* The same, unless id names consumer already: a name given twice counts
 * once. */
static bool identity_add(struct auth_identity *id, const char *consumer)
{
    return auth_identity_allows(id, consumer) || identity_append(id, consumer);
}

/* The next word of *cursor, NUL-terminated in place; NULL when the line has
 * no more. */
static char *next_word(char **cursor)
{
    char *start = *cursor + strspn(*cursor, BLANKS);
    if (*start == '\0') {
        *cursor = start;
        return NULL;
    }
    char *end = start + strcspn(start, BLANKS);
    if (*end != '\0')
        *end++ = '\0';
    *cursor = end;
    return start;
}

/* One line, "sk_... consumer-id [consumer-id ...]", blank or a '#' comment.
 * A word starting with '#' after the key is refused rather than read as a
 * comment: before, such a line was an error, and taking "# note" as the
 * consumers "#" and "note" would quietly grant them. Returns false with
 * *error set, or with *error untouched when out of memory. */
static bool parse_api_key_line(struct auth *a, char *line, const char *path, unsigned line_no,
                               char *error, size_t error_size)
{
    char *cursor = line;
    const char *key = next_word(&cursor);
    if (key == NULL || key[0] == '#')
        return true;
    size_t key_len = strlen(key);
    const char *consumer = next_word(&cursor);
    if (strncmp(key, API_KEY_PREFIX, strlen(API_KEY_PREFIX)) != 0 || key_len < API_KEY_MIN_BYTES ||
        key_len > API_KEY_MAX_BYTES || consumer == NULL) {
        snprintf(error, error_size,
                 "%s:%u: expected 'sk_<at least 13 characters> consumer-id [consumer-id ...]'",
                 path, line_no);
        return false;
    }

    struct api_key k = {.key_len = key_len};
    const char *why = NULL;
    bool out_of_memory = false;
    for (size_t words = 1; consumer != NULL && why == NULL && !out_of_memory;
         consumer = next_word(&cursor), words++) {
        if (words > AUTH_MAX_CONSUMERS)
            why = "more than " DECIMAL(AUTH_MAX_CONSUMERS) " consumer ids";
        else if (consumer[0] == '#')
            why = "a consumer id cannot start with '#' (comments take a line of their own)";
        else if (request_consumer_id_valid(consumer, (size_t)a->consumer_id_max_bytes, &why))
            out_of_memory = !identity_add(&k.consumers, consumer);
    }
    if (why != NULL) {
        snprintf(error, error_size, "%s:%u: %s", path, line_no, why);
        auth_identity_clear(&k.consumers);
        return false;
    }
    k.key = !out_of_memory ? strdup(key) : NULL;
    struct api_key *grown =
        k.key != NULL ? realloc(a->api_keys, (a->api_key_count + 1) * sizeof(*grown)) : NULL;
    if (grown == NULL) {
        free(k.key);
        auth_identity_clear(&k.consumers);
        return false;
    }
    a->api_keys = grown;
    a->api_keys[a->api_key_count++] = k;
    return true;
}

/* Errors name the file's own line number (blank and comment lines count)
 * and never quote a key. */
static bool parse_api_keys(struct auth *a, char *text, size_t len, const char *path, char *error,
                           size_t error_size)
{
    if (memchr(text, '\0', len) != NULL) {
        snprintf(error, error_size, "%s holds a NUL byte", path);
        return false;
    }
    unsigned line_no = 0;
    for (char *next = text, *line; (line = strsep(&next, "\n")) != NULL;) {
        if (!parse_api_key_line(a, line, path, ++line_no, error, error_size))
            return false;
    }
    return true;
}

static bool load_api_keys(struct auth *a, const char *path, char *error, size_t error_size)
{
    size_t len = 0;
    char *text = read_file(path, &len, error, error_size);
    if (text == NULL)
        return false;
    bool ok = parse_api_keys(a, text, len, path, error, error_size);
    free(text);
    return ok;
}

struct auth *auth_new(const struct auth_options *o, char *error, size_t error_size)
{
    error[0] = '\0';
    bool hs = o->hs256_secret != NULL && o->hs256_secret[0] != '\0';
    bool rs = o->rs256_key_file != NULL && o->rs256_key_file[0] != '\0';
    bool keys = o->api_keys_file != NULL && o->api_keys_file[0] != '\0';
    if (!hs && !rs && !keys)
        return NULL;

    struct auth *a = calloc(1, sizeof(*a));
    if (a == NULL)
        goto fail;
    a->consumer_claim = strdup(o->consumer_claim);
    if (a->consumer_claim == NULL)
        goto fail;
    a->allow_no_exp = o->allow_no_exp;
    a->leeway_seconds = o->leeway_seconds;
    a->consumer_id_max_bytes = o->consumer_id_max_bytes > 0 ? o->consumer_id_max_bytes : 256;
    if ((o->audience != NULL && o->audience[0] != '\0' &&
         (a->audience = strdup(o->audience)) == NULL) ||
        (o->issuer != NULL && o->issuer[0] != '\0' && (a->issuer = strdup(o->issuer)) == NULL))
        goto fail;
    if (hs) {
        a->hs256_secret_len = strlen(o->hs256_secret);
        /* RFC 7518: an HS256 key must have at least the hash's 256 bits. */
        if (a->hs256_secret_len < 32) {
            snprintf(error, error_size, "JWT_HS256_SECRET must be at least 32 bytes");
            goto fail;
        }
        a->hs256_secret = (unsigned char *)strdup(o->hs256_secret);
        if (a->hs256_secret == NULL)
            goto fail;
    }
    if (rs) {
        a->rs256_key =
            (unsigned char *)read_file(o->rs256_key_file, &a->rs256_key_len, error, error_size);
        if (a->rs256_key == NULL)
            goto fail;
        if (strstr((char *)a->rs256_key, "-----BEGIN PUBLIC KEY-----") == NULL) {
            snprintf(error, error_size, "%s is not a PEM public key", o->rs256_key_file);
            goto fail;
        }
    }
    if (keys && !load_api_keys(a, o->api_keys_file, error, error_size))
        goto fail;
    return a;

fail:
    if (error[0] == '\0')
        snprintf(error, error_size, "out of memory");
    auth_free(a);
    return NULL;
}

void auth_free(struct auth *a)
{
    if (a == NULL)
        return;
    free(a->audience);
    free(a->issuer);
    free(a->hs256_secret);
    free(a->rs256_key);
    free(a->consumer_claim);
    for (size_t i = 0; i < a->api_key_count; i++) {
        free(a->api_keys[i].key);
        auth_identity_clear(&a->api_keys[i].consumers);
    }
    free(a->api_keys);
    free(a);
}

void auth_identity_clear(struct auth_identity *id)
{
    for (size_t i = 0; i < id->consumer_count; i++)
        free(id->consumer_ids[i]);
    free(id->consumer_ids);
    *id = (struct auth_identity){0};
}

/* A linear scan: a credential names at most AUTH_MAX_CONSUMERS. */
bool auth_identity_allows(const struct auth_identity *id, const char *consumer)
{
    if (id == NULL || consumer == NULL)
        return false;
    for (size_t i = 0; i < id->consumer_count; i++) {
        if (strcmp(id->consumer_ids[i], consumer) == 0)
            return true;
    }
    return false;
}

/* Same time whatever the first differing byte is, so a key cannot be
 * guessed byte by byte from response times. */
static bool equal_constant_time(const char *a, const char *b, size_t len)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
    return diff == 0;
}

static enum auth_result check_api_key(const struct auth *a, const char *credential,
                                      struct auth_identity *id, const char **why)
{
    size_t len = strlen(credential);
    const struct api_key *match = NULL;
    for (size_t i = 0; i < a->api_key_count; i++) {
        const struct api_key *k = &a->api_keys[i];
        if (k->key_len == len && equal_constant_time(k->key, credential, len))
            match = k;
    }
    if (match == NULL) {
        *why = "unknown API key";
        return AUTH_INVALID;
    }
    /* The file's list is distinct already. */
    for (size_t i = 0; i < match->consumers.consumer_count; i++) {
        if (!identity_append(id, match->consumers.consumer_ids[i])) {
            auth_identity_clear(id);
            *why = "out of memory";
            return AUTH_INVALID;
        }
    }
    return AUTH_OK;
}

static int base64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url; returns the length or -1. */
static long base64url_decode(const char *in, size_t len, char *out, size_t out_size)
{
    size_t n = 0;
    unsigned bits = 0, acc = 0;
    for (size_t i = 0; i < len; i++) {
        int v = base64url_value(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= out_size)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    return (long)n;
}

/* The "alg" of the token's header, to pick the key; NULL if unreadable. */
static jwt_alg_t header_alg(const char *token)
{
    const char *dot = strchr(token, '.');
    char header[HEADER_MAX];
    if (dot == NULL)
        return JWT_ALG_INVAL;
    long len = base64url_decode(token, (size_t)(dot - token), header, sizeof(header));
    if (len < 0)
        return JWT_ALG_INVAL;
    json_t *root = json_loadb(header, (size_t)len, 0, NULL);
    const char *alg = json_string_value(json_object_get(root, "alg"));
    jwt_alg_t result = JWT_ALG_INVAL;
    if (alg != NULL && strcmp(alg, "HS256") == 0)
        result = JWT_ALG_HS256;
    else if (alg != NULL && strcmp(alg, "RS256") == 0)
        result = JWT_ALG_RS256;
    else if (alg != NULL && strcmp(alg, "none") == 0)
        result = JWT_ALG_NONE;
    json_decref(root);
    return result;
}

/* 9999-12-31T23:59:59Z: later dates are no real expiry, and exp becomes
 * an int64_t (and a timer) that must not overflow. */
#define NUMERIC_DATE_MAX 253402300799.0

/* A NumericDate claim (RFC 7519: seconds, fractions allowed). Returns 0
 * when absent, 1 when present (*out set), -1 when not a number or beyond
 * NUMERIC_DATE_MAX either way. */
static int numeric_date(json_t *claims, const char *name, double *out)
{
    json_t *v = json_object_get(claims, name);
    if (v == NULL)
        return 0;
    if (!json_is_number(v) || json_number_value(v) > NUMERIC_DATE_MAX ||
        json_number_value(v) < -NUMERIC_DATE_MAX)
        return -1;
    *out = json_number_value(v);
    return 1;
}

/* aud is a string or an array of strings (RFC 7519, 4.1.3). */
static bool audience_matches(json_t *aud, const char *wanted)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), wanted) == 0;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), wanted) == 0)
            return true;
    }
    return false;
}

#define CLAIM_SHAPE "token consumer claim must be a string or an array of strings"

/* One name of the consumer claim into id. Returns NULL, or why not. */
static const char *read_consumer(const struct auth *a, json_t *name, struct auth_identity *id)
{
    const char *text = json_string_value(name);
    const char *unused = NULL;
    if (text == NULL)
        return CLAIM_SHAPE;
    /* A "\u0000" inside would cut the name short. */
    if (strlen(text) != json_string_length(name) ||
        !request_consumer_id_valid(text, (size_t)a->consumer_id_max_bytes, &unused))
        return "token consumer claim holds an invalid consumer id";
    return identity_add(id, text) ? NULL : "out of memory";
}

/* The consumer claim: a non-empty string, or a non-empty array of them.
 * Returns NULL with id filled, or why not (id then partly filled). */
static const char *read_consumers(const struct auth *a, json_t *claim, struct auth_identity *id)
{
    if (claim == NULL || (json_is_string(claim) && json_string_length(claim) == 0) ||
        (json_is_array(claim) && json_array_size(claim) == 0))
        return "token has no consumer claim";
    if (!json_is_array(claim))
        return read_consumer(a, claim, id);
    if (json_array_size(claim) > AUTH_MAX_CONSUMERS)
        return "token consumer claim names more than " DECIMAL(AUTH_MAX_CONSUMERS) " consumers";
    size_t i;
    json_t *name;
    json_array_foreach(claim, i, name)
    {
        const char *why = read_consumer(a, name, id);
        if (why != NULL)
            return why;
    }
    return NULL;
}

static enum auth_result check_claims(const struct auth *a, jwt_t *jwt, time_t now,
                                     struct auth_identity *id, const char **why)
{
    char *text = jwt_get_grants_json(jwt, NULL);
    json_t *claims = text != NULL ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    enum auth_result result = AUTH_INVALID;
    double exp = 0, nbf = 0, iat = 0, leeway = a->leeway_seconds;
    int has_exp = numeric_date(claims, "exp", &exp);
    int has_nbf = numeric_date(claims, "nbf", &nbf);
    int has_iat = numeric_date(claims, "iat", &iat);
    free(text);

    if (!json_is_object(claims)) {
        *why = "token claims are not an object";
    } else if (has_exp < 0 || has_nbf < 0 || has_iat < 0) {
        *why = "exp, nbf and iat must be NumericDates";
    } else if (has_exp == 0 && !a->allow_no_exp) {
        *why = "token has no exp";
    } else if (has_exp == 1 && exp + leeway <= (double)now) {
        *why = "token expired";
        result = AUTH_EXPIRED;
    } else if (has_nbf == 1 && nbf - leeway > (double)now) {
        *why = "token not valid yet";
        result = AUTH_EXPIRED;
    } else if (has_iat == 1 && iat - leeway > (double)now) {
        *why = "token issued in the future";
    } else if (a->issuer != NULL &&
               (!json_is_string(json_object_get(claims, "iss")) ||
                strcmp(json_string_value(json_object_get(claims, "iss")), a->issuer) != 0)) {
        *why = "token issuer not accepted";
    } else if (a->audience != NULL &&
               !audience_matches(json_object_get(claims, "aud"), a->audience)) {
        *why = "token audience not accepted";
    } else {
        const char *refused = read_consumers(a, json_object_get(claims, a->consumer_claim), id);
        if (refused != NULL) {
            *why = refused;
            auth_identity_clear(id);
        } else {
            /* The stream ends at exp itself (the leeway only forgives skew
             * at the door), unless the token only opens streams: those
             * auth_issue_token() makes live for seconds, and a stream opened
             * with one runs on. */
            json_t *use = json_object_get(claims, "piper");
            bool connect_only =
                json_is_string(use) && strcmp(json_string_value(use), "connect") == 0;
            id->expires_at = has_exp == 1 && !connect_only ? (int64_t)exp : 0;
            result = AUTH_OK;
        }
    }
    json_decref(claims);
    return result;
}

static enum auth_result check_jwt(const struct auth *a, const char *token, time_t now,
                                  struct auth_identity *id, const char **why)
{
    jwt_alg_t alg = header_alg(token);
    const unsigned char *key = NULL;
    size_t key_len = 0;
    if (alg == JWT_ALG_HS256 && a->hs256_secret != NULL) {
        key = a->hs256_secret;
        key_len = a->hs256_secret_len;
    } else if (alg == JWT_ALG_RS256 && a->rs256_key != NULL) {
        key = a->rs256_key;
        key_len = a->rs256_key_len;
    } else {
        *why = alg == JWT_ALG_INVAL ? "malformed token" : "token algorithm not accepted";
        return AUTH_INVALID;
    }
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, key, (int)key_len) != 0 || jwt == NULL) {
        *why = "bad token signature";
        return AUTH_INVALID;
    }
    /* libjwt verified with the key we chose; the algorithm it used must be
     * the one that key is for. */
    enum auth_result result = AUTH_INVALID;
    if (jwt_get_alg(jwt) != alg)
        *why = "token algorithm not accepted";
    else
        result = check_claims(a, jwt, now, id, why);
    jwt_free(jwt);
    return result;
}

enum auth_result auth_check(const struct auth *a, const char *credential, time_t now,
                            struct auth_identity *id, const char **why)
{
    *id = (struct auth_identity){0};
    if (credential == NULL || credential[0] == '\0') {
        *why = "missing credential";
        return AUTH_INVALID;
    }
    if (strncmp(credential, API_KEY_PREFIX, strlen(API_KEY_PREFIX)) == 0)
        return check_api_key(a, credential, id, why);
    return check_jwt(a, credential, now, id, why);
}

bool auth_can_issue(const struct auth *a)
{
    return a != NULL && a->hs256_secret != NULL;
}

/* The consumer claim as libjwt takes it: {"<claim>": [...]}, a JSON text
 * to free(); NULL when out of memory. */
static char *consumers_json(const struct auth *a, const char *const *names, size_t count)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < count; i++) {
        if (json_array_append_new(list, json_string(names[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    json_t *claims = list != NULL ? json_pack("{s:o}", a->consumer_claim, list) : NULL;
    char *text = claims != NULL ? json_dumps(claims, JSON_COMPACT) : NULL;
    json_decref(claims);
    return text;
}

static char *issue(const struct auth *a, const char *const *names, size_t count, int ttl_seconds,
                   time_t now)
{
    jwt_t *jwt = NULL;
    char *token = NULL;
    if (!auth_can_issue(a) || count == 0 || jwt_new(&jwt) != 0)
        return NULL;
    /* One consumer keeps the plain string claim that any verifier reads. */
    bool consumers_added = false;
    if (count == 1) {
        consumers_added = jwt_add_grant(jwt, a->consumer_claim, names[0]) == 0;
    } else {
        char *json = consumers_json(a, names, count);
        consumers_added = json != NULL && jwt_add_grants_json(jwt, json) == 0;
        free(json);
    }
    if (consumers_added && jwt_add_grant_int(jwt, "iat", (long)now) == 0 &&
        jwt_add_grant_int(jwt, "exp", (long)now + ttl_seconds) == 0 &&
        jwt_add_grant(jwt, "piper", "connect") == 0 &&
        (a->issuer == NULL || jwt_add_grant(jwt, "iss", a->issuer) == 0) &&
        (a->audience == NULL || jwt_add_grant(jwt, "aud", a->audience) == 0) &&
        jwt_set_alg(jwt, JWT_ALG_HS256, a->hs256_secret, (int)a->hs256_secret_len) == 0)
        token = jwt_encode_str(jwt);
    jwt_free(jwt);
    return token;
}

char *auth_issue_token(const struct auth *a, const char *consumer_id, int ttl_seconds, time_t now)
{
    return issue(a, &consumer_id, 1, ttl_seconds, now);
}

char *auth_issue_token_for(const struct auth *a, const struct auth_identity *id, int ttl_seconds,
                           time_t now)
{
    if (id == NULL)
        return NULL;
    return issue(a, (const char *const *)id->consumer_ids, id->consumer_count, ttl_seconds, now);
}
