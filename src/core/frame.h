/*
 * Frame: one event, formatted once as SSE bytes and shared by reference.
 *
 * An event fans out to every stream of its consumer; formatting it per
 * stream would cost CPU and memory in proportion to the audience. A frame is
 * immutable after frame_new_event() and reference-counted: the creator holds
 * one reference, and every holder (a stream's held queue, an output buffer
 * using it by reference) takes its own. The last frame_unref() frees it.
 * Single-threaded: all references are taken and dropped on the loop thread.
 */
#ifndef PIPER_FRAME_H
#define PIPER_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct frame {
    unsigned refs;
    int64_t id;
    double timestamp; /* the row's timestamp (Unix seconds), for lag metrics */
    char *ws;         /* the WebSocket encoding, once built (frame_ws_text) */
    size_t ws_len;
    size_t len;
    char bytes[]; /* the SSE encoding */
};

/* Why an event could not become a frame; each is logged and counted. */
enum frame_error {
    FRAME_OK,
    FRAME_BAD_ID,          /* id not positive */
    FRAME_BAD_TYPE,        /* type contains CR, LF or NUL */
    FRAME_PAYLOAD_INVALID, /* payload is not valid JSON */
    FRAME_PAYLOAD_NOT_OBJECT,
    FRAME_NO_MEMORY,
};

const char *frame_error_name(enum frame_error err);

/* Formats an event. payload is JSON text; it is validated, must be an
 * object, and is re-encoded compactly with its values untouched. Returns a
 * frame holding one reference, or NULL with *err set. */
struct frame *frame_new_event(int64_t id, const char *type, size_t type_len, const char *payload,
                              size_t payload_len, double timestamp, enum frame_error *err);

/* The same event as a WebSocket text message,
 * {"id":"<id>","event":"<type>","data":<payload>} (the id a string: ids
 * exceed JavaScript's safe integers), built from the SSE bytes on first use
 * and kept with the frame, so every WebSocket stream shares one copy. NULL
 * when out of memory. */
const char *frame_ws_text(struct frame *f, size_t *len);

/* A frame that is no event (no id: it moves no cursor), such as the
 * history-gone signal: `event: <name>` and `data: <data_json>`, data_json a
 * JSON object the caller built. NULL when out of memory. */
struct frame *frame_new_signal(const char *name, const char *data_json);

/* A copy of event frame f whose id line says id (id_len bytes, no CR, LF
 * or NUL) instead of f's number; the copy keeps f's id field, so cursors
 * and lag are judged as for f. For the streams whose id is not the row's
 * own (a stream of several consumers, stream_cursor.h). NULL when out of
 * memory. */
struct frame *frame_with_id(const struct frame *f, const char *id, size_t id_len);

/* The event's type as written in the frame ("" for an untyped event). */
const char *frame_type(const struct frame *f, size_t *len);

struct frame *frame_ref(struct frame *f);
void frame_unref(struct frame *f);

/* Releases the formatting scratch space; call once at exit. */
void frame_release_scratch(void);

#endif
