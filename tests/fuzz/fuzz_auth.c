/*
 * Credentials (api/auth.c): what any client sends as a bearer token, and the
 * API_KEYS_FILE an operator writes. The first byte picks the mode:
 *
 *   0: the rest is a credential, checked as sent (a JWT or an sk_ key);
 *   1: the rest is a JWT's claims (JSON), signed here with the configured
 *      HS256 secret, so the claim checks behind the signature are reached;
 *   2: the rest is an API keys file, then a NUL, then a credential.
 *
 * Checking must never crash or leak; AUTH_OK comes with no reason and
 * 1 to AUTH_MAX_CONSUMERS distinct non-empty consumer ids, the first also
 * as consumer_id; anything else with a reason and no id. A token issued for
 * an accepted identity must be accepted with the same consumers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jwt.h>

#include "api/auth.h"

#define SECRET "fuzz-secret-fuzz-secret-fuzz-secret!"
#define NOW 1800000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct auth *make_auth(const char *keys_file)
{
    char error[256];
    struct auth_options o = {
        .hs256_secret = SECRET,
        .rs256_key_file = "",
        .consumer_claim = "sub",
        .api_keys_file = keys_file,
        .audience = "piper",
        .issuer = "",
        .allow_no_exp = true,
        .leeway_seconds = 30,
        .consumer_id_max_bytes = 64,
    };
    return auth_new(&o, error, sizeof(error));
}

static void check_identity(const struct auth_identity *id)
{
    if (id->consumer_count == 0 || id->consumer_count > AUTH_MAX_CONSUMERS ||
        id->consumer_ids == NULL || id->consumer_id != id->consumer_ids[0])
        abort();
    for (size_t i = 0; i < id->consumer_count; i++) {
        if (id->consumer_ids[i] == NULL || id->consumer_ids[i][0] == '\0' ||
            !auth_identity_allows(id, id->consumer_ids[i]))
            abort();
        for (size_t j = 0; j < i; j++) {
            if (strcmp(id->consumer_ids[i], id->consumer_ids[j]) == 0)
                abort();
        }
    }
}

/* What auth_issue_token_for makes of id reads back as the same list. */
static void check_reissue(const struct auth *a, const struct auth_identity *id)
{
    char *token = auth_issue_token_for(a, id, 30, NOW);
    if (token == NULL)
        return; /* out of memory, or the claims do not fit libjwt */
    struct auth_identity again = {0};
    const char *why = NULL;
    if (auth_check(a, token, NOW, &again, &why) != AUTH_OK ||
        again.consumer_count != id->consumer_count)
        abort();
    for (size_t i = 0; i < id->consumer_count; i++) {
        if (strcmp(again.consumer_ids[i], id->consumer_ids[i]) != 0)
            abort();
    }
    auth_identity_clear(&again);
    free(token);
}

static void check(const struct auth *a, const char *credential, bool reissue)
{
    char *unset = (char *)"unset";
    struct auth_identity id = {.consumer_id = unset, .consumer_ids = &unset, .consumer_count = 1};
    const char *why = NULL;
    enum auth_result r = auth_check(a, credential, NOW, &id, &why);
    if (r == AUTH_OK) {
        if (why != NULL)
            abort();
        check_identity(&id);
        if (reissue)
            check_reissue(a, &id);
    } else if (id.consumer_id != NULL || id.consumer_ids != NULL || id.consumer_count != 0 ||
               why == NULL) {
        abort();
    }
    auth_identity_clear(&id);
}

/* The claims, signed: NULL when libjwt refuses them (not an object). */
static char *sign(const char *claims)
{
    jwt_t *jwt = NULL;
    char *token = NULL;
    if (jwt_new(&jwt) != 0)
        abort();
    if (jwt_add_grants_json(jwt, claims) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, strlen(SECRET)) == 0)
        token = jwt_encode_str(jwt);
    jwt_free(jwt);
    return token;
}

static void keys_file(const char *text, size_t len, const char *credential)
{
    /* A file in memory, reached by path as auth_new reads it. */
    int fd = memfd_create("api_keys", 0);
    if (fd < 0)
        abort();
    if (len > 0 && write(fd, text, len) != (ssize_t)len)
        abort();
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct auth *a = make_auth(path);
    if (a != NULL) {
        check(a, credential, false);
        auth_free(a);
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct auth *fixed;
    if (fixed == NULL && (fixed = make_auth("")) == NULL)
        abort();
    if (size == 0)
        return 0;
    size_t len = size - 1;
    char *text = malloc(len + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, len);
    text[len] = '\0';

    switch (data[0] % 3) {
    case 0:
        check(fixed, text, false);
        break;
    case 1: {
        char *token = sign(text);
        if (token != NULL)
            check(fixed, token, true);
        free(token);
        break;
    }
    case 2: {
        size_t file_len = strlen(text);
        keys_file(text, file_len, file_len < len ? text + file_len + 1 : "");
        break;
    }
    }
    free(text);
    return 0;
}
