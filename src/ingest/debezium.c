/*
 * Debezium messages read with the JSON member scanner (util/json_text.h).
 *
 * Why not a JSON library: jansson builds a tree of every value of a message
 * (2.5 KB of schema, the payload string) to read three members, and refuses
 * a number it cannot hold (1e400, beyond a double) wherever it appears. The
 * scanner validates the whole text as it walks it, so only valid JSON is
 * accepted, and it hands back each member as a span of raw text: the few
 * this file reads are decoded, the rest are skipped unread. A wrapped
 * message is walked twice, the wrapper and then its payload; the id is
 * parsed from its digits by parse_int64, exactly.
 */
#include "ingest/debezium.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_text.h"
#include "util/number.h"

#define HEARTBEAT_PREFIX "__debezium-heartbeat"
/* The table the service reads (core/event_row.h). */
#define EVENTS_TABLE "events"

/* The members this file reads, at any level. */
enum member {
    M_SCHEMA,
    M_PAYLOAD,
    M_OP,
    M_AFTER,
    M_SOURCE,
    M_STATUS,
    M_ID,
    M_TS_MS,
    M_SUBSCRIBER,
    M_TABLE,
    M_COUNT
};

static const char *const member_names[M_COUNT] = {
    "schema", "payload", "op", "after", "source", "status", "id", "ts_ms", "subscriber", "table"};

#define BIT(m) (1u << (m))
#define ENVELOPE_MEMBERS                                                                           \
    (BIT(M_OP) | BIT(M_AFTER) | BIT(M_SOURCE) | BIT(M_STATUS) | BIT(M_ID) | BIT(M_TS_MS))

/* A member's raw value; kind JSON_KIND_INVALID when absent. */
struct span {
    const char *text;
    size_t len;
    enum json_kind kind;
};

enum subject_kind { SUBJECT_TABLE, SUBJECT_HEARTBEAT, SUBJECT_TRANSACTION };

void debezium_hint_clear(struct debezium_hint *hint)
{
    free(hint->subscriber);
    memset(hint, 0, sizeof(*hint));
}

static bool all_space(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
            return false;
    }
    return true;
}

/* Walks the object in text, remembering the members of mask. False with
 * *why on invalid JSON or a member of mask seen twice. */
static bool walk(const char *text, size_t len, unsigned mask, struct span *out, const char **why)
{
    struct json_members it;
    struct json_member m;
    int rc;

    memset(out, 0, M_COUNT * sizeof(*out));
    if (!json_members_begin(&it, text, len)) {
        *why = "not JSON";
        return false;
    }
    while ((rc = json_members_next(&it, &m)) == 1) {
        for (int i = 0; i < M_COUNT; i++) {
            if ((mask & BIT(i)) == 0 || !json_string_equals(m.key, m.key_len, member_names[i]))
                continue;
            if (out[i].kind != JSON_KIND_INVALID) {
                *why = "duplicate member";
                return false;
            }
            out[i] = (struct span){m.value, m.value_len, m.kind};
            break;
        }
    }
    if (rc < 0) {
        *why = "not JSON";
        return false;
    }
    return true;
}

static enum subject_kind subject_kind(const char *subject)
{
    if (subject == NULL)
        return SUBJECT_TABLE;
    if (strncmp(subject, HEARTBEAT_PREFIX ".", strlen(HEARTBEAT_PREFIX ".")) == 0)
        return SUBJECT_HEARTBEAT;
    const char *dot = strrchr(subject, '.');
    if (dot != NULL && strcmp(dot + 1, "transaction") == 0)
        return SUBJECT_TRANSACTION;
    return SUBJECT_TABLE;
}

static bool string_is(const struct span *s, const char *value)
{
    return s->kind == JSON_KIND_STRING && json_string_equals(s->text, s->len, value);
}

/* {"status": "BEGIN" or "END", "id": "<txId>:<lsn>", ...} */
static bool is_transaction(const struct span *env)
{
    return (string_is(&env[M_STATUS], "BEGIN") || string_is(&env[M_STATUS], "END")) &&
           env[M_ID].kind == JSON_KIND_STRING;
}

/* True when source.table names another table than the one served. */
static bool other_table(const struct span *source)
{
    struct span members[M_COUNT];
    const char *why = NULL;
    if (source->kind != JSON_KIND_OBJECT ||
        !walk(source->text, source->len, BIT(M_TABLE), members, &why))
        return false;
    return members[M_TABLE].kind == JSON_KIND_STRING && !string_is(&members[M_TABLE], EVENTS_TABLE);
}

static enum debezium_outcome take_row(const struct span *after, struct debezium_hint *hint,
                                      const char **why)
{
    struct span row[M_COUNT];
    if (after->kind != JSON_KIND_OBJECT) {
        *why = "missing after";
        return DEBEZIUM_INVALID;
    }
    if (!walk(after->text, after->len, BIT(M_ID) | BIT(M_SUBSCRIBER), row, why))
        return DEBEZIUM_INVALID;
    if (row[M_ID].kind == JSON_KIND_INVALID) {
        *why = "missing id";
        return DEBEZIUM_INVALID;
    }
    if (row[M_ID].kind != JSON_KIND_NUMBER ||
        !parse_int64(row[M_ID].text, row[M_ID].len, 1, INT64_MAX, &hint->id)) {
        *why = "id is not a positive integer";
        return DEBEZIUM_INVALID;
    }
    const struct span *sub = &row[M_SUBSCRIBER];
    if (sub->kind == JSON_KIND_INVALID) {
        *why = "missing subscriber";
        return DEBEZIUM_INVALID;
    }
    /* A decoded string is never longer than its raw form. */
    hint->subscriber = sub->kind == JSON_KIND_STRING ? malloc(sub->len) : NULL;
    if (hint->subscriber == NULL ||
        !json_string_decode(sub->text, sub->len, hint->subscriber, &hint->subscriber_len)) {
        *why = "subscriber is not a string";
        return DEBEZIUM_INVALID;
    }
    return DEBEZIUM_HINT;
}

static enum debezium_outcome take_change(const struct span *env, struct debezium_hint *hint,
                                         const char **why)
{
    static const char ops[] = "crudt";
    char op = 0;
    for (const char *o = ops; *o != '\0' && op == 0; o++) {
        char name[2] = {*o, '\0'};
        if (string_is(&env[M_OP], name))
            op = *o;
    }
    if (op == 0) {
        *why = "unknown op";
        return DEBEZIUM_INVALID;
    }
    hint->op = op;
    if (op == 'u' || op == 'd' || op == 't' || other_table(&env[M_SOURCE]))
        return DEBEZIUM_IGNORED;
    return take_row(&env[M_AFTER], hint, why);
}

static enum debezium_outcome take_envelope(enum subject_kind kind, const struct span *env,
                                           struct debezium_hint *hint, const char **why)
{
    bool has_op = env[M_OP].kind != JSON_KIND_INVALID;
    if (kind == SUBJECT_HEARTBEAT) {
        /* {"ts_ms": n}: neither a change event nor transaction metadata. */
        if (has_op || env[M_STATUS].kind != JSON_KIND_INVALID ||
            env[M_TS_MS].kind != JSON_KIND_NUMBER) {
            *why = "not a heartbeat";
            return DEBEZIUM_INVALID;
        }
        return DEBEZIUM_HEARTBEAT;
    }
    if (has_op)
        return take_change(env, hint, why);
    if (kind == SUBJECT_TRANSACTION) {
        if (is_transaction(env))
            return DEBEZIUM_TRANSACTION;
        *why = "not transaction metadata";
        return DEBEZIUM_INVALID;
    }
    *why = "missing op";
    return DEBEZIUM_INVALID;
}

/* A message that is not an object: a tombstone (null) or invalid. */
static enum debezium_outcome take_non_object(const char *text, size_t len, const char **why)
{
    enum json_kind kind;
    json_compact(text, len, NULL, &kind);
    if (kind == JSON_KIND_NULL)
        return DEBEZIUM_IGNORED;
    *why = kind == JSON_KIND_INVALID ? "not JSON" : "message is not a JSON object";
    return DEBEZIUM_INVALID;
}

enum debezium_outcome debezium_parse(const char *subject, const char *text, size_t len,
                                     struct debezium_hint *hint, const char **why)
{
    struct span top[M_COUNT], inner[M_COUNT];
    const struct span *env = top;
    struct json_members probe;

    memset(hint, 0, sizeof(*hint));
    *why = NULL;
    if (text == NULL || all_space(text, len))
        return DEBEZIUM_IGNORED; /* a tombstone */
    if (!json_members_begin(&probe, text, len))
        return take_non_object(text, len, why);
    if (!walk(text, len, ENVELOPE_MEMBERS | BIT(M_SCHEMA) | BIT(M_PAYLOAD), top, why))
        return DEBEZIUM_INVALID;
    if (top[M_SCHEMA].kind != JSON_KIND_INVALID) {
        const struct span *payload = &top[M_PAYLOAD];
        if (payload->kind == JSON_KIND_NULL)
            return DEBEZIUM_IGNORED; /* a wrapped tombstone */
        if (payload->kind != JSON_KIND_OBJECT) {
            *why = payload->kind == JSON_KIND_INVALID ? "missing payload"
                                                      : "payload is not a JSON object";
            return DEBEZIUM_INVALID;
        }
        if (!walk(payload->text, payload->len, ENVELOPE_MEMBERS, inner, why))
            return DEBEZIUM_INVALID;
        env = inner;
    }
    enum debezium_outcome outcome = take_envelope(subject_kind(subject), env, hint, why);
    if (outcome == DEBEZIUM_INVALID || outcome == DEBEZIUM_HEARTBEAT ||
        outcome == DEBEZIUM_TRANSACTION) {
        debezium_hint_clear(hint);
    }
    return outcome;
}

/* A NATS subject token that is literal: not empty, no wildcard. */
static bool literal_tokens(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '*' || s[i] == '>' || s[i] == ' ' || s[i] == '\t' ||
            (s[i] == '.' && s[i + 1] == '.'))
            return false;
    }
    return true;
}

bool debezium_heartbeat_subject(const char *nats_subject, char *out, size_t size)
{
    size_t len = strlen(nats_subject);
    size_t prefix_len;
    if (len >= 2 && strcmp(nats_subject + len - 2, ".>") == 0) {
        prefix_len = len - 2;
    } else {
        const char *last = memrchr(nats_subject, '.', len);
        const char *schema =
            last != NULL ? memrchr(nats_subject, '.', (size_t)(last - nats_subject)) : NULL;
        if (schema == NULL)
            return false;
        prefix_len = (size_t)(schema - nats_subject);
    }
    if (!literal_tokens(nats_subject, prefix_len))
        return false;
    int n = snprintf(out, size, HEARTBEAT_PREFIX ".%.*s", (int)prefix_len, nats_subject);
    return n > 0 && (size_t)n < size;
}
