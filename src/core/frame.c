/*
 * Frames are allocated as one block (header plus bytes) so a fan-out costs
 * one allocation per event, whatever the audience. The payload is compacted
 * into a scratch buffer reused across events (the loop thread is the only
 * caller) and then laid out by the SSE formatter, which owns the wire format.
 */
#include "core/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_text.h"
#include "core/sse.h"

/* Scratch space larger than this is released after use, so one huge event
 * does not pin its size for the life of the process. */
#define SCRATCH_KEEP_BYTES (64 * 1024)

static char *scratch;
static size_t scratch_size;

static char *scratch_reserve(size_t n)
{
    if (n <= scratch_size)
        return scratch;
    char *bigger = realloc(scratch, n);
    if (bigger == NULL)
        return NULL;
    scratch = bigger;
    scratch_size = n;
    return scratch;
}

static void scratch_trim(void)
{
    if (scratch_size <= SCRATCH_KEEP_BYTES)
        return;
    free(scratch);
    scratch = NULL;
    scratch_size = 0;
}

const char *frame_error_name(enum frame_error err)
{
    switch (err) {
    case FRAME_OK:
        return "ok";
    case FRAME_BAD_ID:
        return "bad_id";
    case FRAME_BAD_TYPE:
        return "bad_type";
    case FRAME_PAYLOAD_INVALID:
        return "payload_invalid_json";
    case FRAME_PAYLOAD_NOT_OBJECT:
        return "payload_not_object";
    case FRAME_NO_MEMORY:
        return "no_memory";
    }
    return "unknown";
}

struct frame *frame_new_event(int64_t id, const char *type, size_t type_len, const char *payload,
                              size_t payload_len, double timestamp, enum frame_error *err)
{
    enum json_kind kind = JSON_KIND_INVALID;
    struct frame *f = NULL;

    *err = FRAME_OK;
    if (id <= 0) {
        *err = FRAME_BAD_ID;
        return NULL;
    }
    if (!sse_type_valid(type, type_len)) {
        *err = FRAME_BAD_TYPE;
        return NULL;
    }
    char *data = scratch_reserve(payload_len > 0 ? payload_len : 1);
    if (data == NULL) {
        *err = FRAME_NO_MEMORY;
        return NULL;
    }
    size_t data_len = json_compact(payload, payload_len, data, &kind);
    if (kind != JSON_KIND_OBJECT) {
        *err = kind == JSON_KIND_INVALID ? FRAME_PAYLOAD_INVALID : FRAME_PAYLOAD_NOT_OBJECT;
        goto out;
    }
    size_t size = sse_event_size(id, type_len, data, data_len);
    f = malloc(sizeof(*f) + size);
    if (f == NULL) {
        *err = FRAME_NO_MEMORY;
        goto out;
    }
    f->refs = 1;
    f->ws = NULL;
    f->ws_len = 0;
    f->id = id;
    f->timestamp = timestamp;
    f->len = sse_write_event(f->bytes, id, type, type_len, data, data_len);
out:
    scratch_trim();
    return f;
}

/* The value of the SSE field name ("event: ") in the frame, or NULL. */
static const char *field(const struct frame *f, const char *name, size_t *len)
{
    size_t n = strlen(name);
    const char *end = f->bytes + f->len;
    for (const char *line = f->bytes; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL)
            break;
        if ((size_t)(nl - line) >= n && memcmp(line, name, n) == 0) {
            *len = (size_t)(nl - line) - n;
            return line + n;
        }
        line = nl + 1;
    }
    return NULL;
}

const char *frame_ws_text(struct frame *f, size_t *len)
{
    if (f->ws != NULL) {
        *len = f->ws_len;
        return f->ws;
    }
    size_t id_len = 0, type_len = 0, data_len = 0;
    const char *id = field(f, "id: ", &id_len);
    const char *type = field(f, "event: ", &type_len);
    const char *data = field(f, "data: ", &data_len);
    if (data == NULL) {
        data = "null";
        data_len = 4;
    }
    if (type == NULL) { /* what EventSource calls an event without a type */
        type = "message";
        type_len = 7;
    }
    /* {"id":"","event":"","data":} plus the escaped parts. */
    char *text = malloc(32 + id_len + 6 * type_len + data_len);
    if (text == NULL)
        return NULL;
    size_t o = 0;
    memcpy(text, "{\"id\":", 6);
    o = 6;
    if (id != NULL) {
        text[o++] = '"';
        memcpy(text + o, id, id_len);
        o += id_len;
        text[o++] = '"';
    } else {
        memcpy(text + o, "null", 4);
        o += 4;
    }
    memcpy(text + o, ",\"event\":\"", 10);
    o += 10;
    o += json_escape(text + o, type, type_len);
    memcpy(text + o, "\",\"data\":", 9);
    o += 9;
    memcpy(text + o, data, data_len);
    o += data_len;
    text[o++] = '}';
    f->ws = text;
    f->ws_len = o;
    *len = o;
    return text;
}

struct frame *frame_new_signal(const char *name, const char *data_json)
{
    size_t name_len = strlen(name), data_len = strlen(data_json);
    size_t size = sizeof("event: \ndata: \n\n") + name_len + data_len;
    struct frame *f = malloc(sizeof(*f) + size);
    if (f == NULL)
        return NULL;
    f->refs = 1;
    f->ws = NULL;
    f->ws_len = 0;
    f->id = 0;
    f->timestamp = 0;
    int n = snprintf(f->bytes, size, "event: %s\ndata: %s\n\n", name, data_json);
    f->len = n > 0 ? (size_t)n : 0;
    return f;
}

struct frame *frame_with_id(const struct frame *f, const char *id, size_t id_len)
{
    /* sse_write_event() puts the id line first. */
    const char *nl = memchr(f->bytes, '\n', f->len);
    size_t rest = nl != NULL ? f->len - (size_t)(nl + 1 - f->bytes) : f->len;
    size_t len = sizeof("id: \n") - 1 + id_len + rest;
    struct frame *copy = malloc(sizeof(*copy) + len + 1);
    if (copy == NULL)
        return NULL;
    copy->refs = 1;
    copy->ws = NULL;
    copy->ws_len = 0;
    copy->id = f->id;
    copy->timestamp = f->timestamp;
    memcpy(copy->bytes, "id: ", 4);
    memcpy(copy->bytes + 4, id, id_len);
    copy->bytes[4 + id_len] = '\n';
    memcpy(copy->bytes + 5 + id_len, f->bytes + (f->len - rest), rest);
    copy->len = len;
    copy->bytes[len] = '\0';
    return copy;
}

const char *frame_type(const struct frame *f, size_t *len)
{
    const char *type = field(f, "event: ", len);
    if (type == NULL) {
        *len = 0;
        return "";
    }
    return type;
}

struct frame *frame_ref(struct frame *f)
{
    f->refs++;
    return f;
}

void frame_unref(struct frame *f)
{
    if (f == NULL)
        return;
    if (--f->refs == 0) {
        free(f->ws);
        free(f);
    }
}

void frame_release_scratch(void)
{
    free(scratch);
    scratch = NULL;
    scratch_size = 0;
}
