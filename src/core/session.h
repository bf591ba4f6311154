/*
 * Sessions: the event streams, one per subscription, whatever carries them.
 *
 * A session is the subscription: it joins the hub as a member (so it only
 * ever sees frames, never where they came from), holds the cursor, hands
 * over from replay to live, sends heartbeats every heartbeat_seconds from a
 * shared timer wheel (which also finds dead clients, since a close is only
 * seen on a write), enforces the slow-consumer limits and ends the stream
 * when its credential expires or the service shuts down.
 *
 * It writes through a sink, which a transport provides: the HTTP/1.1 SSE
 * writer, the HTTP/2 SSE writer, the WebSocket writer. Each encodes the same
 * frames its own way (frame.h builds each event once for all of them).
 *
 * States and transitions (session_enter() refuses any other):
 *
 *     NEW --start--> OPEN --end (shutdown, credential expired)--> ENDING
 *                     |  \--abort (slow consumer, no memory)--> CLOSING
 *                     |                 ENDING --deadline--> CLOSING
 *                     +--gone--> freed; ENDING and CLOSING --gone--> freed
 *
 * The sink reports "gone" exactly once, from the event loop (never from
 * inside a sink call), after which the session is freed: that is the one
 * place a started session ends, so hub and replay iterations never see a
 * member disappear under them.
 *
 * A stream of several consumers is one member per consumer, each with its
 * own cursor, replay and hand-over, writing to the one sink: exactly once
 * and in order per consumer. Its event ids are composite cursors
 * (stream_cursor.h), each event re-framed with the positions of all its
 * members (frame_with_id), since no single number can resume it.
 *
 * Slow consumers: pending output (written, not yet taken by the client)
 * above hard_bytes, or above soft_bytes for soft_seconds, aborts the stream,
 * and so does pending output of which the client takes nothing for
 * write_timeout_seconds (checked at each heartbeat, so during a replay too,
 * and per stream on a shared HTTP/2 connection). The client resumes with
 * Last-Event-ID and loses nothing, and nobody else waits.
 */
#ifndef PIPER_SESSION_H
#define PIPER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "core/hub.h"
#include "core/replay.h"
#include "core/stream_cursor.h"
#include "ops/metrics.h"

struct sessions;
struct session;
struct session_sink;

/* What a transport provides to carry a session's stream. Every call is
 * made from the loop thread; none may report "gone" synchronously. */
struct session_sink_ops {
    enum transport_kind kind;
    /* The stream's first bytes (SSE: the retry: field). */
    void (*start)(struct session_sink *sink, long long retry_ms);
    /* Events, in increasing id order. */
    void (*write_frames)(struct session_sink *sink, struct frame *const *frames, size_t count);
    void (*heartbeat)(struct session_sink *sink, int64_t unix_time);
    /* Bytes written but not yet taken by the client, and bytes taken so far
     * (for the no-progress timeout). */
    size_t (*pending)(const struct session_sink *sink);
    uint64_t (*taken)(const struct session_sink *sink);
    /* Finish cleanly (saying why, where the transport can), then report
     * gone; abort cuts the stream now, then reports gone. */
    void (*end)(struct session_sink *sink, enum close_reason why);
    void (*abort)(struct session_sink *sink, enum close_reason why);
    /* For logs: the client's address and port. */
    const char *(*peer)(const struct session_sink *sink, unsigned *port);
};

/* Embedded in the transport's stream object. */
struct session_sink {
    const struct session_sink_ops *ops;
    struct session *session; /* set by session_start() */
};

/* Transport -> session. */
/* Pending output fell to HUB_LOW_WATERMARK or below. */
void session_sink_drained(struct session_sink *sink);
void session_sink_gone(struct session_sink *sink, enum close_reason why);

struct session_settings {
    int heartbeat_seconds;
    long long retry_ms;
    size_t soft_bytes;
    int soft_seconds;
    size_t hard_bytes;
    int write_timeout_seconds; /* pending output and nothing taken for this long */
};

struct sessions *sessions_new(struct event_base *base, struct hub *hub, struct replay *replay,
                              const struct session_settings *settings);

/* Every started session must be gone (its transport freed) first. */
void sessions_free(struct sessions *all);

struct session_params {
    const char *consumer_id;
    bool has_last_id; /* replay events after last_id first */
    int64_t last_id;
    /* A stream of several consumers (stream_cursor.h): when set, it takes
     * the place of consumer_id, and positions (set->count entries, or NULL
     * for none) the place of last_id; an entry STREAM_CURSOR_NONE starts
     * that consumer live. Both copied. */
    const struct consumer_set *consumers;
    const int64_t *positions;
    int initial;                       /* without last_id: first send the newest N rows */
    const struct event_filter *filter; /* types wanted (NULL: all); copied */
    int64_t expires_at;                /* Unix seconds; 0: the credential never expires */
    const char *forwarded_for;         /* for logs; NULL: none */
};

/* A session not yet started: it has joined the hub but written nothing,
 * so the caller can still answer with an error. It must be started or
 * discarded before control returns to the loop (a NEW session drops what
 * the hub gives it). NULL when out of memory. */
struct session *session_new(struct sessions *all, const struct session_params *params)
    __attribute__((warn_unused_result));
/* Frees a session that was never started. */
void session_discard(struct session *s);
/* Joins the hub, writes the stream's first bytes and starts the replay;
 * the session then lives until sink reports gone. */
void session_start(struct session *s, struct session_sink *sink);

/* Releases the scratch space of composite cursors; call once at exit. */
void session_release_scratch(void);

size_t sessions_count(const struct sessions *all);
size_t sessions_count_by_transport(const struct sessions *all, enum transport_kind kind);
/* Open streams of consumer_id on this instance. */
size_t sessions_of_consumer(const struct sessions *all, const char *consumer_id);

/* Graceful shutdown: every stream ends cleanly, so clients reconnect
 * elsewhere. done(arg) runs once all are gone, or after deadline, when the
 * rest are cut and gone. */
void sessions_shutdown(struct sessions *all, const struct timeval *deadline, void (*done)(void *),
                       void *arg);

#endif
