/*
 * Frames are allocated as one block (header plus bytes) so a fan-out costs
 * one allocation per event, whatever the audience. The payload is compacted
 * into a scratch buffer reused across events (the loop thread is the only
 * caller) and then laid out by the SSE formatter, which owns the wire format.
 */
#include "core/frame.h"

#include <stdlib.h>

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
    f->id = id;
    f->timestamp = timestamp;
    f->len = sse_write_event(f->bytes, id, type, type_len, data, data_len);
out:
    scratch_trim();
    return f;
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
    if (--f->refs == 0)
        free(f);
}

void frame_release_scratch(void)
{
    free(scratch);
    scratch = NULL;
    scratch_size = 0;
}
