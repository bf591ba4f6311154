/*
 * Credentials (api/auth.c): what any client sends as a bearer token, and the
 * API_KEYS_FILE an operator writes. The first byte picks the mode:
 *
 *   0: the rest is a credential, checked as sent (a JWT or an sk_ key);
 *   1: the rest is a JWT's claims (JSON), signed here with the configured
 *      HS256 secret, so the claim checks behind the signature are reached;
 *   2: the rest is an API keys file, then a NUL, then a credential.
 *
 * Checking must never crash or leak; AUTH_OK comes with a non-empty
 * consumer id and no reason, anything else with a reason and no id.
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

static void check(const struct auth *a, const char *credential)
{
    struct auth_identity id = {.consumer_id = (char *)"unset"};
    const char *why = NULL;
    enum auth_result r = auth_check(a, credential, NOW, &id, &why);
    if (r == AUTH_OK && (id.consumer_id == NULL || id.consumer_id[0] == '\0' || why != NULL))
        abort();
    if (r != AUTH_OK && (id.consumer_id != NULL || why == NULL))
        abort();
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
        check(a, credential);
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
        check(fixed, text);
        break;
    case 1: {
        char *token = sign(text);
        if (token != NULL)
            check(fixed, token);
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
