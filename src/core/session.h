/*
 * Sessions: the SSE streams, one per GET /events.
 *
 * A session owns its evhttp request from session_start() until it ends. It
 * joins the hub as a member (so it only ever sees frames, never where they
 * came from), sends its headers and a retry: field at once, then heartbeat
 * comments every heartbeat_seconds from a shared timer wheel, which also
 * notices dead clients since a close is only seen on a write.
 *
 * Slow consumers: pending output (written, not yet taken by the socket) above
 * hard_bytes, or above soft_bytes for soft_seconds, closes the stream; a
 * write that makes no progress for write_timeout_seconds does too. The client
 * resumes with Last-Event-ID and loses nothing, and nobody else waits.
 *
 * Ending a stream is always deferred to a loop callback, so hub and replay
 * iterations never see members disappear under them.
 */
#ifndef PIPER_SESSION_H
#define PIPER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>

#include "core/hub.h"
#include "ops/metrics.h"
#include "core/replay.h"

struct sessions;

struct session_settings {
    int heartbeat_seconds;
    long long retry_ms;
    size_t soft_bytes;
    int soft_seconds;
    size_t hard_bytes;
    int write_timeout_seconds;
    int socket_buffer_bytes; /* SO_SNDBUF; 0 leaves the kernel's autotuning */
};

struct sessions *sessions_new(struct event_base *base, struct hub *hub, struct replay *replay,
                              const struct session_settings *settings);

/* Closes any stream still open (abruptly) and frees the registry. */
void sessions_free(struct sessions *all);

/* Turns req into a stream for consumer_id; with has_last_id the stream first
 * replays events after last_id. A non-zero expires_at (Unix seconds) ends
 * the stream cleanly at that time: the credential that opened it expired. Returns false (and the
 * caller answers 503) only when memory runs out. On success the request's headers are released (an
 * idle stream keeps as little as possible): pointers into them are invalid once this returns. */
bool session_start(struct sessions *all, struct evhttp_request *req, const char *consumer_id,
                   bool has_last_id, int64_t last_id, int64_t expires_at)
    __attribute__((warn_unused_result));

size_t sessions_count(const struct sessions *all);

/* Graceful shutdown: every stream ends with a clean end of body (and
 * "Connection: close"), so clients reconnect elsewhere. done(arg) runs once
 * all are gone or after deadline, when the rest are cut. */
void sessions_shutdown(struct sessions *all, const struct timeval *deadline, void (*done)(void *),
                       void *arg);

#endif
