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

#define API_KEY_PREFIX "sk_"
#define KEY_FILE_MAX (64 * 1024)
#define HEADER_MAX 1024

struct api_key {
    char *key;
    size_t key_len;
    char *consumer_id;
};

struct auth {
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

/* Lines "sk_... consumer-id"; blank lines and '#' comments skipped. */
static bool parse_api_keys(struct auth *a, char *text, const char *path, char *error,
                           size_t error_size)
{
    unsigned line_no = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        line_no++;
        char key[512], consumer[512], extra[2];
        int fields = sscanf(line, " %511s %511s %1s", key, consumer, extra);
        if (fields <= 0 || key[0] == '#')
            continue;
        if (fields != 2 || strncmp(key, API_KEY_PREFIX, strlen(API_KEY_PREFIX)) != 0 ||
            strlen(key) < 16) {
            snprintf(error, error_size,
                     "%s: line %u must be 'sk_<at least 13 characters> consumer-id'", path,
                     line_no);
            return false;
        }
        struct api_key *grown = realloc(a->api_keys, (a->api_key_count + 1) * sizeof(*grown));
        if (grown == NULL)
            return false;
        a->api_keys = grown;
        struct api_key *k = &a->api_keys[a->api_key_count];
        k->key = strdup(key);
        k->key_len = strlen(key);
        k->consumer_id = strdup(consumer);
        a->api_key_count++;
        if (k->key == NULL || k->consumer_id == NULL)
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
    bool ok = parse_api_keys(a, text, path, error, error_size);
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
    free(a->hs256_secret);
    free(a->rs256_key);
    free(a->consumer_claim);
    for (size_t i = 0; i < a->api_key_count; i++) {
        free(a->api_keys[i].key);
        free(a->api_keys[i].consumer_id);
    }
    free(a->api_keys);
    free(a);
}

void auth_identity_clear(struct auth_identity *id)
{
    free(id->consumer_id);
    id->consumer_id = NULL;
    id->expires_at = 0;
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
    id->consumer_id = strdup(match->consumer_id);
    id->expires_at = 0;
    return id->consumer_id != NULL ? AUTH_OK : AUTH_INVALID;
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

static enum auth_result check_claims(const struct auth *a, jwt_t *jwt, time_t now,
                                     struct auth_identity *id, const char **why)
{
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    bool has_exp = errno == 0;
    if (has_exp && exp <= (long)now) {
        *why = "token expired";
        return AUTH_EXPIRED;
    }
    errno = 0;
    long nbf = jwt_get_grant_int(jwt, "nbf");
    if (errno == 0 && nbf > (long)now) {
        *why = "token not valid yet";
        return AUTH_EXPIRED;
    }
    const char *consumer = jwt_get_grant(jwt, a->consumer_claim);
    if (consumer == NULL || consumer[0] == '\0') {
        *why = "token has no consumer claim";
        return AUTH_INVALID;
    }
    id->consumer_id = strdup(consumer);
    id->expires_at = has_exp ? (int64_t)exp : 0;
    return id->consumer_id != NULL ? AUTH_OK : AUTH_INVALID;
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
    id->consumer_id = NULL;
    id->expires_at = 0;
    if (credential == NULL || credential[0] == '\0') {
        *why = "missing credential";
        return AUTH_INVALID;
    }
    if (strncmp(credential, API_KEY_PREFIX, strlen(API_KEY_PREFIX)) == 0)
        return check_api_key(a, credential, id, why);
    return check_jwt(a, credential, now, id, why);
}
