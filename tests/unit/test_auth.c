/* Credential checks and issued tokens (api/auth.c). Tokens are made here
 * with libjwt from JSON claims, so every claim shape can be tried. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jwt.h>

#include "api/auth.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define NOW 1800000000

static struct auth *make_auth(const char *audience, const char *issuer, bool allow_no_exp,
                              const char *keys_file)
{
    char error[256];
    struct auth_options o = {
        .hs256_secret = SECRET,
        .rs256_key_file = "",
        .consumer_claim = "sub",
        .api_keys_file = keys_file != NULL ? keys_file : "",
        .audience = audience,
        .issuer = issuer,
        .allow_no_exp = allow_no_exp,
        .leeway_seconds = 30,
        .consumer_id_max_bytes = 64,
    };
    struct auth *a = auth_new(&o, error, sizeof(error));
    if (a == NULL)
        fail_msg("auth_new: %s", error);
    return a;
}

/* An HS256 token with exactly these claims (JSON object text). */
static char *token_with(const char *claims)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, 32), 0);
    char *token = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_non_null(token);
    return token;
}

static enum auth_result check(struct auth *a, const char *claims, struct auth_identity *id,
                              const char **why)
{
    char *token = token_with(claims);
    enum auth_result r = auth_check(a, token, NOW, id, why);
    free(token);
    return r;
}

static void assert_refused(struct auth *a, const char *claims, enum auth_result expected,
                           const char *reason)
{
    struct auth_identity id = {0};
    const char *why = NULL;
    enum auth_result r = check(a, claims, &id, &why);
    if (r != expected || why == NULL || strcmp(why, reason) != 0)
        fail_msg("%s: result %d '%s', expected %d '%s'", claims, r, why != NULL ? why : "",
                 expected, reason);
    assert_null(id.consumer_id);
}

static void check_claims__numeric_dates_with_fractions__accepted(void **state)
{
    (void)state;
    struct auth *a = make_auth(NULL, NULL, false, NULL);
    struct auth_identity id = {0};
    const char *why = NULL;
    assert_int_equal(
        check(a,
              "{\"sub\":\"c1\",\"exp\":1800000100.5,\"nbf\":1799999999.25,\"iat\":1799999990.75}",
              &id, &why),
        AUTH_OK);
    assert_string_equal(id.consumer_id, "c1");
    assert_int_equal(id.expires_at, 1800000100);
    auth_identity_clear(&id);
    auth_free(a);
}

static void check_claims__time_rules__leeway_of_30_seconds(void **state)
{
    (void)state;
    struct auth *a = make_auth(NULL, NULL, false, NULL);
    struct auth_identity id = {0};
    const char *why = NULL;
    /* Expired 10 s ago: within the leeway. */
    assert_int_equal(check(a, "{\"sub\":\"c\",\"exp\":1799999990}", &id, &why), AUTH_OK);
    auth_identity_clear(&id);
    assert_refused(a, "{\"sub\":\"c\",\"exp\":1799999969.9}", AUTH_EXPIRED, "token expired");
    /* Not valid for another 20 s: within; 31 s: not. */
    assert_int_equal(check(a, "{\"sub\":\"c\",\"exp\":1800000100,\"nbf\":1800000020}", &id, &why),
                     AUTH_OK);
    auth_identity_clear(&id);
    assert_refused(a, "{\"sub\":\"c\",\"exp\":1800000100,\"nbf\":1800000031}", AUTH_EXPIRED,
                   "token not valid yet");
    assert_refused(a, "{\"sub\":\"c\",\"exp\":1800000100,\"iat\":1800000060}", AUTH_INVALID,
                   "token issued in the future");
    auth_free(a);
}

static void check_claims__bad_shapes__refused(void **state)
{
    (void)state;
    struct auth *a = make_auth(NULL, NULL, false, NULL);
    assert_refused(a, "{\"sub\":\"c\"}", AUTH_INVALID, "token has no exp");
    assert_refused(a, "{\"sub\":\"c\",\"exp\":\"1800000100\"}", AUTH_INVALID,
                   "exp, nbf and iat must be NumericDates");
    assert_refused(a, "{\"sub\":\"c\",\"exp\":1800000100,\"nbf\":true}", AUTH_INVALID,
                   "exp, nbf and iat must be NumericDates");
    /* Found by fuzz_auth: a huge exp was cast to int64_t (undefined). */
    assert_refused(a, "{\"sub\":\"c\",\"exp\":1e300}", AUTH_INVALID,
                   "exp, nbf and iat must be NumericDates");
    assert_refused(a, "{\"sub\":\"c\",\"exp\":1800000100,\"nbf\":-1e19}", AUTH_INVALID,
                   "exp, nbf and iat must be NumericDates");
    assert_refused(a, "{\"exp\":1800000100}", AUTH_INVALID, "token has no consumer claim");
    assert_refused(a, "{\"sub\":\"\",\"exp\":1800000100}", AUTH_INVALID,
                   "token has no consumer claim");
    assert_refused(a, "{\"sub\":7,\"exp\":1800000100}", AUTH_INVALID,
                   "token consumer claim must be a string or an array of strings");
    assert_refused(a, "{\"sub\":{\"id\":\"c\"},\"exp\":1800000100}", AUTH_INVALID,
                   "token consumer claim must be a string or an array of strings");
    assert_refused(a, "{\"sub\":\"bad\\u0001id\",\"exp\":1800000100}", AUTH_INVALID,
                   "token consumer claim holds an invalid consumer id");
    auth_free(a);
}

static void check_claims__consumer_array__names_every_consumer(void **state)
{
    (void)state;
    struct auth *a = make_auth(NULL, NULL, false, NULL);
    struct auth_identity id = {0};
    const char *why = NULL;
    assert_int_equal(check(a, "{\"sub\":[\"b\",\"a\",\"b\",\"c\"],\"exp\":1800000100}", &id, &why),
                     AUTH_OK);
    /* In the token's order, the repeated "b" once; consumer_id the first. */
    assert_int_equal(id.consumer_count, 3);
    assert_string_equal(id.consumer_ids[0], "b");
    assert_string_equal(id.consumer_ids[1], "a");
    assert_string_equal(id.consumer_ids[2], "c");
    assert_ptr_equal(id.consumer_id, id.consumer_ids[0]);
    assert_int_equal(id.expires_at, 1800000100);
    auth_identity_clear(&id);
    assert_null(id.consumer_ids);
    assert_int_equal(id.consumer_count, 0);

    /* A one-name array is the same as the string. */
    assert_int_equal(check(a, "{\"sub\":[\"solo\"],\"exp\":1800000100}", &id, &why), AUTH_OK);
    assert_int_equal(id.consumer_count, 1);
    assert_string_equal(id.consumer_id, "solo");
    auth_identity_clear(&id);
    auth_free(a);
}

static void check_claims__consumer_array_bad_entries__refused(void **state)
{
    (void)state;
    struct auth *a = make_auth(NULL, NULL, false, NULL);
    const char *shape = "token consumer claim must be a string or an array of strings";
    const char *invalid = "token consumer claim holds an invalid consumer id";
    assert_refused(a, "{\"sub\":[],\"exp\":1800000100}", AUTH_INVALID,
                   "token has no consumer claim");
    assert_refused(a, "{\"sub\":[\"a\",7],\"exp\":1800000100}", AUTH_INVALID, shape);
    assert_refused(a, "{\"sub\":[\"a\",null],\"exp\":1800000100}", AUTH_INVALID, shape);
    assert_refused(a, "{\"sub\":[[\"a\"]],\"exp\":1800000100}", AUTH_INVALID, shape);
    assert_refused(a, "{\"sub\":[\"a\",\"\"],\"exp\":1800000100}", AUTH_INVALID, invalid);
    assert_refused(a, "{\"sub\":[\"a\",\"line\\nbreak\"],\"exp\":1800000100}", AUTH_INVALID,
                   invalid);
    /* make_auth allows 64 bytes. */
    assert_refused(a,
                   "{\"sub\":[\"a\",\"0123456789012345678901234567890123456789012345678901234"
                   "567890123456789\"],\"exp\":1800000100}",
                   AUTH_INVALID, invalid);
    auth_free(a);
}

/* {"sub":["c0",...,"c<n-1>"],"exp":1800000100} */
static char *claims_with_consumers(size_t n)
{
    size_t size = 64 + n * 16;
    char *claims = malloc(size);
    assert_non_null(claims);
    size_t len = (size_t)snprintf(claims, size, "{\"sub\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(claims + len, size - len, "%s\"c%zu\"", i > 0 ? "," : "", i);
    snprintf(claims + len, size - len, "],\"exp\":1800000100}");
    return claims;
}

static void check_claims__consumer_array__at_most_1000(void **state)
{
    (void)state;
    struct auth *a = make_auth(NULL, NULL, false, NULL);
    struct auth_identity id = {0};
    const char *why = NULL;
    char *claims = claims_with_consumers(AUTH_MAX_CONSUMERS);
    assert_int_equal(check(a, claims, &id, &why), AUTH_OK);
    assert_int_equal(id.consumer_count, AUTH_MAX_CONSUMERS);
    assert_true(auth_identity_allows(&id, "c999"));
    auth_identity_clear(&id);
    free(claims);
    claims = claims_with_consumers(AUTH_MAX_CONSUMERS + 1);
    assert_refused(a, claims, AUTH_INVALID, "token consumer claim names more than 1000 consumers");
    free(claims);
    auth_free(a);
}

static void identity_allows__only_its_consumers(void **state)
{
    (void)state;
    struct auth *a = make_auth(NULL, NULL, false, NULL);
    struct auth_identity id = {0};
    const char *why = NULL;
    assert_false(auth_identity_allows(&id, "a")); /* zeroed: nobody */
    assert_false(auth_identity_allows(NULL, "a"));
    assert_int_equal(check(a, "{\"sub\":[\"a\",\"bb\"],\"exp\":1800000100}", &id, &why), AUTH_OK);
    assert_true(auth_identity_allows(&id, "a"));
    assert_true(auth_identity_allows(&id, "bb"));
    assert_false(auth_identity_allows(&id, "b"));
    assert_false(auth_identity_allows(&id, "A"));
    assert_false(auth_identity_allows(&id, ""));
    assert_false(auth_identity_allows(&id, NULL));
    auth_identity_clear(&id);
    assert_false(auth_identity_allows(&id, "a"));
    auth_free(a);
}

static void check_claims__no_exp_allowed__never_expires(void **state)
{
    (void)state;
    struct auth *a = make_auth(NULL, NULL, true, NULL);
    struct auth_identity id = {0};
    const char *why = NULL;
    assert_int_equal(check(a, "{\"sub\":\"c\"}", &id, &why), AUTH_OK);
    assert_int_equal(id.expires_at, 0);
    auth_identity_clear(&id);
    auth_free(a);
}

static void check_claims__audience_and_issuer__checked_when_set(void **state)
{
    (void)state;
    struct auth *a = make_auth("piper", "https://issuer.example", false, NULL);
    struct auth_identity id = {0};
    const char *why = NULL;
    assert_int_equal(check(a,
                           "{\"sub\":\"c\",\"exp\":1800000100,\"aud\":\"piper\","
                           "\"iss\":\"https://issuer.example\"}",
                           &id, &why),
                     AUTH_OK);
    auth_identity_clear(&id);
    assert_int_equal(check(a,
                           "{\"sub\":\"c\",\"exp\":1800000100,\"aud\":[\"x\",\"piper\"],"
                           "\"iss\":\"https://issuer.example\"}",
                           &id, &why),
                     AUTH_OK);
    auth_identity_clear(&id);
    assert_refused(
        a,
        "{\"sub\":\"c\",\"exp\":1800000100,\"aud\":\"other\",\"iss\":\"https://issuer.example\"}",
        AUTH_INVALID, "token audience not accepted");
    assert_refused(a, "{\"sub\":\"c\",\"exp\":1800000100,\"iss\":\"https://issuer.example\"}",
                   AUTH_INVALID, "token audience not accepted");
    assert_refused(a,
                   "{\"sub\":\"c\",\"exp\":1800000100,\"aud\":\"piper\",\"iss\":\"https://evil\"}",
                   AUTH_INVALID, "token issuer not accepted");
    auth_free(a);
}

static void check_jwt__alg_none_and_bad_signature__refused(void **state)
{
    (void)state;
    struct auth *a = make_auth(NULL, NULL, true, NULL);
    struct auth_identity id = {0};
    const char *why = NULL;
    /* {"alg":"none"} . {"sub":"c"} . (empty) */
    assert_int_equal(auth_check(a, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjIn0.", NOW, &id, &why),
                     AUTH_INVALID);
    char *token = token_with("{\"sub\":\"c\"}");
    token[strlen(token) - 2] ^= 1; /* a signature byte */
    assert_int_equal(auth_check(a, token, NOW, &id, &why), AUTH_INVALID);
    free(token);
    auth_free(a);
}

static void issue_token__round_trip__connect_only(void **state)
{
    (void)state;
    struct auth *a = make_auth("piper", "issuer", false, NULL);
    assert_true(auth_can_issue(a));
    char *token = auth_issue_token(a, "alice", 30, NOW);
    assert_non_null(token);
    struct auth_identity id = {0};
    const char *why = NULL;
    assert_int_equal(auth_check(a, token, NOW, &id, &why), AUTH_OK);
    assert_string_equal(id.consumer_id, "alice");
    /* Opens streams that outlive it. */
    assert_int_equal(id.expires_at, 0);
    auth_identity_clear(&id);
    assert_int_equal(auth_check(a, token, NOW + 61, &id, &why), AUTH_EXPIRED);
    free(token);
    auth_free(a);
}

static void issue_token__several_consumers__array_claim_round_trips(void **state)
{
    (void)state;
    struct auth *a = make_auth("piper", NULL, false, NULL);
    struct auth_identity in = {0}, out = {0};
    const char *why = NULL;
    assert_int_equal(
        check(a, "{\"sub\":[\"alice\",\"bob\"],\"exp\":1800000100,\"aud\":\"piper\"}", &in, &why),
        AUTH_OK);
    char *token = auth_issue_token_for(a, &in, 30, NOW);
    assert_non_null(token);
    assert_int_equal(auth_check(a, token, NOW, &out, &why), AUTH_OK);
    assert_int_equal(out.consumer_count, 2);
    assert_string_equal(out.consumer_ids[0], "alice");
    assert_string_equal(out.consumer_ids[1], "bob");
    assert_int_equal(out.expires_at, 0); /* connect-only, as for one consumer */
    auth_identity_clear(&out);
    free(token);

    /* One consumer: the plain string claim, which any verifier reads. */
    auth_identity_clear(&in);
    assert_int_equal(
        check(a, "{\"sub\":\"alice\",\"exp\":1800000100,\"aud\":\"piper\"}", &in, &why), AUTH_OK);
    token = auth_issue_token_for(a, &in, 30, NOW);
    assert_non_null(token);
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_decode(&jwt, token, (const unsigned char *)SECRET, 32), 0);
    assert_string_equal(jwt_get_grant(jwt, "sub"), "alice");
    jwt_free(jwt);
    free(token);
    auth_identity_clear(&in);

    /* Nobody to issue for. */
    assert_null(auth_issue_token_for(a, &in, 30, NOW));
    assert_null(auth_issue_token_for(a, NULL, 30, NOW));
    auth_free(a);
}

static char *write_keys(const char *text)
{
    static char path[] = "/tmp/test_auth_keys.XXXXXX";
    strcpy(path, "/tmp/test_auth_keys.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void api_keys__file__keys_map_to_consumers(void **state)
{
    (void)state;
    char *path = write_keys("# keys\n\nsk_0123456789abcd alice\n  sk_zyxwvutsrqponm  bob  \n");
    struct auth *a = make_auth(NULL, NULL, false, path);
    struct auth_identity id = {0};
    const char *why = NULL;
    assert_int_equal(auth_check(a, "sk_zyxwvutsrqponm", NOW, &id, &why), AUTH_OK);
    assert_string_equal(id.consumer_id, "bob");
    auth_identity_clear(&id);
    assert_int_equal(auth_check(a, "sk_0123456789abce", NOW, &id, &why), AUTH_INVALID);
    unlink(path);
    auth_free(a);
}

static void api_keys__line_with_several_consumers__names_them_all(void **state)
{
    (void)state;
    char *path = write_keys("sk_0123456789abcd alice\n"
                            "sk_zyxwvutsrqponm\tbob  carol\tbob dave \r\n");
    struct auth *a = make_auth(NULL, NULL, false, path);
    struct auth_identity id = {0};
    const char *why = NULL;
    assert_int_equal(auth_check(a, "sk_zyxwvutsrqponm", NOW, &id, &why), AUTH_OK);
    assert_int_equal(id.consumer_count, 3);
    assert_string_equal(id.consumer_id, "bob");
    assert_string_equal(id.consumer_ids[1], "carol");
    assert_string_equal(id.consumer_ids[2], "dave");
    assert_true(auth_identity_allows(&id, "dave"));
    assert_false(auth_identity_allows(&id, "alice"));
    assert_int_equal(id.expires_at, 0);
    auth_identity_clear(&id);
    assert_int_equal(auth_check(a, "sk_0123456789abcd", NOW, &id, &why), AUTH_OK);
    assert_int_equal(id.consumer_count, 1);
    assert_string_equal(id.consumer_id, "alice");
    auth_identity_clear(&id);
    unlink(path);
    auth_free(a);
}

static void api_keys__errors__name_the_file_line(void **state)
{
    (void)state;
    char error[256];
    struct auth_options o = {.hs256_secret = "",
                             .rs256_key_file = "",
                             .consumer_claim = "sub",
                             .consumer_id_max_bytes = 8};
    /* The bad line is the 4th: blank and comment lines count. */
    char *path = write_keys("sk_0123456789abcd alice\n\n# comment\nsk_short bob\n");
    o.api_keys_file = path;
    assert_null(auth_new(&o, error, sizeof(error)));
    assert_non_null(strstr(error, ":4: expected"));
    assert_null(strstr(error, "sk_short")); /* keys are never quoted */
    unlink(path);
    path = write_keys("sk_0123456789abcd far-too-long-id\n");
    o.api_keys_file = path;
    assert_null(auth_new(&o, error, sizeof(error)));
    assert_non_null(strstr(error, ":1: consumer id is too long"));
    unlink(path);
    /* Any of the line's consumers is checked, not only the first. */
    path = write_keys("# keys\nsk_0123456789abcd alice far-too-long-id\n");
    o.api_keys_file = path;
    assert_null(auth_new(&o, error, sizeof(error)));
    assert_non_null(strstr(error, ":2: consumer id is too long"));
    unlink(path);
    /* A key alone names nobody. */
    path = write_keys("sk_0123456789abcd   \n");
    o.api_keys_file = path;
    assert_null(auth_new(&o, error, sizeof(error)));
    assert_non_null(strstr(error, ":1: expected"));
    assert_null(strstr(error, "sk_0123456789abcd"));
    unlink(path);
    /* No trailing comments: "# note" is not taken as two consumers. */
    path = write_keys("sk_0123456789abcd alice # note\n");
    o.api_keys_file = path;
    assert_null(auth_new(&o, error, sizeof(error)));
    assert_non_null(strstr(error, ":1: a consumer id cannot start with '#'"));
    unlink(path);
}

/* An API keys file of one line: a key of key_bytes ("sk_kkk...") and
 * consumers c0 ... c<consumers-1>. Returns the result of auth_new. */
static struct auth *auth_with_key_line(size_t key_bytes, size_t consumers, char *key, char *error,
                                       size_t error_size)
{
    struct auth_options o = {.hs256_secret = "",
                             .rs256_key_file = "",
                             .consumer_claim = "sub",
                             .consumer_id_max_bytes = 8};
    memcpy(key, "sk_", 3);
    memset(key + 3, 'k', key_bytes - 3);
    key[key_bytes] = '\0';
    size_t size = key_bytes + consumers * 8 + 2;
    char *text = malloc(size);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, size, "%s", key);
    for (size_t i = 0; i < consumers; i++)
        len += (size_t)snprintf(text + len, size - len, " c%zu", i);
    snprintf(text + len, size - len, "\n");
    o.api_keys_file = write_keys(text);
    free(text);
    struct auth *a = auth_new(&o, error, error_size);
    unlink(o.api_keys_file);
    return a;
}

static void api_keys__line_limits__1000_consumers_and_511_byte_keys(void **state)
{
    (void)state;
    char error[256], key[513];
    struct auth_identity id = {0};
    const char *why = NULL;
    struct auth *a = auth_with_key_line(511, AUTH_MAX_CONSUMERS, key, error, sizeof(error));
    assert_non_null(a);
    assert_int_equal(auth_check(a, key, NOW, &id, &why), AUTH_OK);
    assert_int_equal(id.consumer_count, AUTH_MAX_CONSUMERS);
    assert_string_equal(id.consumer_ids[AUTH_MAX_CONSUMERS - 1], "c999");
    auth_identity_clear(&id);
    auth_free(a);

    assert_null(auth_with_key_line(512, 1, key, error, sizeof(error)));
    assert_non_null(strstr(error, ":1: expected"));
    assert_null(auth_with_key_line(16, AUTH_MAX_CONSUMERS + 1, key, error, sizeof(error)));
    assert_non_null(strstr(error, ":1: more than 1000 consumer ids"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_claims__numeric_dates_with_fractions__accepted),
        cmocka_unit_test(check_claims__time_rules__leeway_of_30_seconds),
        cmocka_unit_test(check_claims__bad_shapes__refused),
        cmocka_unit_test(check_claims__consumer_array__names_every_consumer),
        cmocka_unit_test(check_claims__consumer_array_bad_entries__refused),
        cmocka_unit_test(check_claims__consumer_array__at_most_1000),
        cmocka_unit_test(identity_allows__only_its_consumers),
        cmocka_unit_test(check_claims__no_exp_allowed__never_expires),
        cmocka_unit_test(check_claims__audience_and_issuer__checked_when_set),
        cmocka_unit_test(check_jwt__alg_none_and_bad_signature__refused),
        cmocka_unit_test(issue_token__round_trip__connect_only),
        cmocka_unit_test(issue_token__several_consumers__array_claim_round_trips),
        cmocka_unit_test(api_keys__file__keys_map_to_consumers),
        cmocka_unit_test(api_keys__line_with_several_consumers__names_them_all),
        cmocka_unit_test(api_keys__errors__name_the_file_line),
        cmocka_unit_test(api_keys__line_limits__1000_consumers_and_511_byte_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
