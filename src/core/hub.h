/*
 * Hub: consumer id -> the streams (members) that want its events, and the
 * per-stream delivery rule that makes delivery exactly-once and in order.
 *
 * Every member has a cursor, the highest event id it has been given. A member
 * is either LIVE (published events with id > cursor are written at once) or
 * CATCHING_UP (a replay is reading the table for it; published events are
 * held, then released with id > cursor when the replay hands over). Events of
 * one subscriber are published in increasing id order (the schema makes id
 * order equal commit order per subscriber), so "id > cursor" drops exactly
 * the duplicates between the table and the live path and nothing else.
 *
 * The hub also tracks the ingest: whether live events are flowing (a
 * generation number that changes on every reconnect) and the highest id seen,
 * which becomes the cursor of a stream that starts without Last-Event-ID.
 *
 * The hub does no I/O. Members write through their ops; a write must not
 * remove members synchronously (closing a stream is deferred by its owner).
 */
#ifndef PIPER_HUB_H
#define PIPER_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event_filter.h"
#include "core/frame.h"
#include "util/list.h"

/* Cursor of a stream that started before the ingest ever reported a
 * position; it is set when the ingest first comes up. */
#define HUB_CURSOR_UNSET INT64_C(-1)

/* A member's pending output at or below this counts as drained: its writer
 * says so (session_sink_drained), and a replay reads its next page. Large
 * enough that the socket still has bytes to send while the next page is
 * read, small enough to bound what a stream buffers beyond one page. */
#define HUB_LOW_WATERMARK (256 * 1024)

struct hub;
struct hub_consumer;
struct hub_member;

enum hub_member_state { HUB_MEMBER_LIVE, HUB_MEMBER_CATCHING_UP };

struct hub_member_ops {
    /* Writes frames (increasing ids) to the stream. */
    void (*write)(struct hub_member *m, struct frame *const *frames, size_t count);
    /* Bytes written but not yet accepted by the client's socket. */
    size_t (*pending)(const struct hub_member *m);
};

/* Bookkeeping of the catch-up (replay) serving a member, owned by replay.c;
 * the hub only initialises it. */
struct hub_catchup {
    void *job;
    struct list_node link;
    bool awaiting_drain;
};

/* Embedded in the stream object; fields are private to hub.c and replay.c. */
struct hub_member {
    struct list_node link;
    struct hub_consumer *consumer;
    const struct hub_member_ops *ops;
    int64_t cursor;
    enum hub_member_state state;
    bool held_overflowed; /* held events were dropped since last cleared */
    struct frame **held;  /* ring of events held while catching up */
    size_t held_head;
    size_t held_count;
    size_t held_capacity;
    struct hub_catchup catchup;
    /* Types the member takes (NULL: all), set by its owner after
     * hub_join(). Events of other types move the cursor unwritten. */
    const struct event_filter *filter;
};

/* Called when the ingest comes up, for the replay module to start catch-ups:
 * members parked while the ingest was down, and with gap_fill also every
 * live member (events sent while the ingest was down were lost). */
typedef void (*hub_resync_fn)(struct hub *hub, bool gap_fill, void *arg);

struct hub *hub_new(size_t held_max);
/* All members must have left. */
void hub_free(struct hub *hub);

void hub_set_resync_hook(struct hub *hub, hub_resync_fn fn, void *arg);

/* Adds m to the streams of consumer_id. With catch_up the member starts
 * CATCHING_UP at cursor (the client's Last-Event-ID) and the caller starts a
 * replay; otherwise it starts LIVE at the highest id seen (or UNSET, held
 * until the ingest reports its position). Returns false on allocation
 * failure, leaving m unlinked. */
bool hub_join(struct hub *hub, const char *consumer_id, struct hub_member *m,
              const struct hub_member_ops *ops, bool catch_up, int64_t cursor)
    __attribute__((warn_unused_result));

/* Removes m, dropping any held events; frees the consumer when it was the
 * last member. The replay module must have released m first. */
void hub_leave(struct hub *hub, struct hub_member *m);

/* Routes one live event to the members of subscriber. Returns how many
 * members took it (written or held). */
size_t hub_publish(struct hub *hub, const char *subscriber, size_t subscriber_len, struct frame *f);

/* Writes replayed frames to m, skipping ids <= its cursor, and advances it. */
void hub_member_deliver(struct hub_member *m, struct frame *const *frames, size_t count);

/* Sets the cursor of a member that is catching up, for the replay when it
 * decides where a stream starts (initial=N, a cursor the database cannot
 * have handed out). Held events are then released with id > cursor. */
void hub_member_start_at(struct hub_member *m, int64_t cursor);

/* Writes a signal frame (no id, frame_new_signal()) to the member now,
 * whatever its state, without touching its cursor. */
void hub_member_signal(struct hub_member *m, struct frame *signal);

/* A member starts catching up (gap fill): live events are held from now on. */
void hub_member_begin_catchup(struct hub_member *m);

/* Hand-over: releases held events with id > cursor in order, then LIVE. */
void hub_member_go_live(struct hub_member *m);

/* The ingest is delivering live events again, having seen ids up to
 * baseline; gap_fill says events may have been lost meanwhile. */
void hub_ingest_up(struct hub *hub, int64_t baseline, bool gap_fill);
void hub_ingest_down(struct hub *hub);

/* 0 while the ingest is down; otherwise changes on every hub_ingest_up(). */
uint64_t hub_live_generation(const struct hub *hub);
int64_t hub_high_water(const struct hub *hub);
bool hub_has_consumer(const struct hub *hub, const char *subscriber, size_t subscriber_len);
size_t hub_consumer_count(const struct hub *hub);
/* Members (streams) of one consumer; 0 when it has none. */
size_t hub_consumer_member_count(const struct hub *hub, const char *id, size_t len);

/* Iteration over consumers and their members, for the replay module. The
 * callback must not make members leave. */
typedef void (*hub_consumer_fn)(struct hub_consumer *c, void *arg);
void hub_each_consumer(struct hub *hub, hub_consumer_fn fn, void *arg);
const char *hub_consumer_id(const struct hub_consumer *c);
struct list_node *hub_consumer_members(struct hub_consumer *c);

#endif
