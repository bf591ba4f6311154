/*
 * Consumer registry (a chained hash table keyed by consumer id) and the
 * cursor rule of hub.h.
 *
 * Held events live in a per-member ring that grows on demand up to held_max.
 * When it is full the whole ring is dropped and the member is flagged: the
 * events are still in the table, and the replay, seeing the flag, reads one
 * more page before handing over. Memory stays bounded during a reconnect
 * storm without giving up exactly-once delivery.
 */
#include "core/hub.h"

#include <stdlib.h>
#include <string.h>

#include "ops/log.h"

struct hub_consumer {
    struct hub_consumer *bucket_next;
    uint64_t hash;
    struct list_node members;
    size_t member_count;
    size_t id_len;
    char id[];
};

struct hub {
    struct hub_consumer **buckets;
    size_t bucket_count; /* a power of two */
    size_t consumer_count;
    size_t held_max;
    uint64_t generation;      /* last generation handed out */
    uint64_t live_generation; /* 0 while the ingest is down */
    int64_t high_water;
    hub_resync_fn resync;
    void *resync_arg;
};

#define HUB_INITIAL_BUCKETS 64
#define HELD_INITIAL_CAPACITY 8

/* FNV-1a: fast, good enough spread for short text keys. */
static uint64_t hash_id(const char *id, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)id[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

struct hub *hub_new(size_t held_max)
{
    struct hub *hub = calloc(1, sizeof(*hub));
    if (hub == NULL)
        return NULL;
    hub->buckets = calloc(HUB_INITIAL_BUCKETS, sizeof(*hub->buckets));
    if (hub->buckets == NULL) {
        free(hub);
        return NULL;
    }
    hub->bucket_count = HUB_INITIAL_BUCKETS;
    hub->held_max = held_max;
    hub->high_water = HUB_CURSOR_UNSET;
    return hub;
}

void hub_free(struct hub *hub)
{
    if (hub == NULL)
        return;
    for (size_t i = 0; i < hub->bucket_count; i++) {
        struct hub_consumer *c = hub->buckets[i];
        while (c != NULL) {
            struct hub_consumer *next = c->bucket_next;
            log_warn("hub freed with members left", "consumer=%s members=%zu", c->id,
                     c->member_count);
            free(c);
            c = next;
        }
    }
    free(hub->buckets);
    free(hub);
}

void hub_set_resync_hook(struct hub *hub, hub_resync_fn fn, void *arg)
{
    hub->resync = fn;
    hub->resync_arg = arg;
}

static struct hub_consumer *find_consumer(const struct hub *hub, const char *id, size_t len,
                                          uint64_t hash)
{
    struct hub_consumer *c = hub->buckets[hash & (hub->bucket_count - 1)];
    for (; c != NULL; c = c->bucket_next) {
        if (c->hash == hash && c->id_len == len && memcmp(c->id, id, len) == 0)
            return c;
    }
    return NULL;
}

/* Doubles the table when it averages more than one consumer per bucket. A
 * failed allocation only keeps chains longer; it is not an error. */
static void maybe_grow(struct hub *hub)
{
    if (hub->consumer_count <= hub->bucket_count)
        return;
    size_t new_count = hub->bucket_count * 2;
    struct hub_consumer **fresh = calloc(new_count, sizeof(*fresh));
    if (fresh == NULL)
        return;
    for (size_t i = 0; i < hub->bucket_count; i++) {
        struct hub_consumer *c = hub->buckets[i];
        while (c != NULL) {
            struct hub_consumer *next = c->bucket_next;
            size_t b = c->hash & (new_count - 1);
            c->bucket_next = fresh[b];
            fresh[b] = c;
            c = next;
        }
    }
    free(hub->buckets);
    hub->buckets = fresh;
    hub->bucket_count = new_count;
}

static struct hub_consumer *add_consumer(struct hub *hub, const char *id, size_t len, uint64_t hash)
{
    struct hub_consumer *c = malloc(sizeof(*c) + len + 1);
    if (c == NULL)
        return NULL;
    c->hash = hash;
    list_init(&c->members);
    c->member_count = 0;
    c->id_len = len;
    memcpy(c->id, id, len);
    c->id[len] = '\0';
    size_t b = hash & (hub->bucket_count - 1);
    c->bucket_next = hub->buckets[b];
    hub->buckets[b] = c;
    hub->consumer_count++;
    maybe_grow(hub);
    return c;
}

static void remove_consumer(struct hub *hub, struct hub_consumer *c)
{
    struct hub_consumer **link = &hub->buckets[c->hash & (hub->bucket_count - 1)];
    while (*link != c)
        link = &(*link)->bucket_next;
    *link = c->bucket_next;
    hub->consumer_count--;
    free(c);
}

static void held_clear(struct hub_member *m)
{
    for (size_t i = 0; i < m->held_count; i++)
        frame_unref(m->held[(m->held_head + i) % m->held_capacity]);
    m->held_head = 0;
    m->held_count = 0;
}

static void held_release_storage(struct hub_member *m)
{
    held_clear(m);
    free(m->held);
    m->held = NULL;
    m->held_capacity = 0;
}

/* Returns false when the ring could not take the frame. */
static bool held_push(struct hub_member *m, size_t held_max, struct frame *f)
{
    if (m->held_count == m->held_capacity) {
        if (m->held_capacity >= held_max)
            return false;
        size_t cap = m->held_capacity == 0 ? HELD_INITIAL_CAPACITY : m->held_capacity * 2;
        if (cap > held_max)
            cap = held_max;
        struct frame **ring = malloc(cap * sizeof(*ring));
        if (ring == NULL)
            return false;
        for (size_t i = 0; i < m->held_count; i++)
            ring[i] = m->held[(m->held_head + i) % m->held_capacity];
        free(m->held);
        m->held = ring;
        m->held_head = 0;
        m->held_capacity = cap;
    }
    m->held[(m->held_head + m->held_count) % m->held_capacity] = frame_ref(f);
    m->held_count++;
    return true;
}

bool hub_join(struct hub *hub, const char *consumer_id, struct hub_member *m,
              const struct hub_member_ops *ops, bool catch_up, int64_t cursor)
{
    size_t len = strlen(consumer_id);
    uint64_t hash = hash_id(consumer_id, len);
    struct hub_consumer *c = find_consumer(hub, consumer_id, len, hash);

    memset(m, 0, sizeof(*m));
    list_init(&m->link);
    list_init(&m->catchup.link);
    if (c == NULL) {
        c = add_consumer(hub, consumer_id, len, hash);
        if (c == NULL)
            return false;
    }
    m->consumer = c;
    m->ops = ops;
    if (catch_up) {
        m->cursor = cursor;
        m->state = HUB_MEMBER_CATCHING_UP;
    } else {
        m->cursor = hub->high_water;
        m->state = m->cursor == HUB_CURSOR_UNSET ? HUB_MEMBER_CATCHING_UP : HUB_MEMBER_LIVE;
    }
    list_append(&c->members, &m->link);
    c->member_count++;
    return true;
}

void hub_leave(struct hub *hub, struct hub_member *m)
{
    struct hub_consumer *c = m->consumer;
    if (c == NULL)
        return;
    held_release_storage(m);
    list_remove(&m->link);
    m->consumer = NULL;
    if (--c->member_count == 0)
        remove_consumer(hub, c);
}

static void member_write_one(struct hub_member *m, struct frame *f)
{
    if (f->id <= m->cursor)
        return;
    if (m->filter == NULL || event_filter_match(m->filter, f))
        m->ops->write(m, &f, 1);
    m->cursor = f->id;
}

size_t hub_publish(struct hub *hub, const char *subscriber, size_t subscriber_len, struct frame *f)
{
    if (f->id > hub->high_water)
        hub->high_water = f->id;
    struct hub_consumer *c =
        find_consumer(hub, subscriber, subscriber_len, hash_id(subscriber, subscriber_len));
    if (c == NULL)
        return 0;

    size_t taken = 0;
    for (struct list_node *n = c->members.next; n != &c->members; n = n->next) {
        struct hub_member *m = container_of(n, struct hub_member, link);
        if (m->state == HUB_MEMBER_LIVE) {
            member_write_one(m, f);
        } else if (!held_push(m, hub->held_max, f)) {
            held_clear(m);
            m->held_overflowed = true;
        }
        taken++;
    }
    return taken;
}

void hub_member_deliver(struct hub_member *m, struct frame *const *frames, size_t count)
{
    size_t first = 0;
    while (first < count && frames[first]->id <= m->cursor)
        first++;
    if (first == count)
        return;
    /* Replayed pages are in id order, so everything after the first new id
     * is new too; write the run in one call, or, filtered, each run of
     * wanted events. */
    if (m->filter == NULL) {
        m->ops->write(m, frames + first, count - first);
    } else {
        size_t run = first;
        for (size_t i = first; i <= count; i++) {
            if (i < count && event_filter_match(m->filter, frames[i]))
                continue;
            if (i > run)
                m->ops->write(m, frames + run, i - run);
            run = i + 1;
        }
    }
    m->cursor = frames[count - 1]->id;
}

void hub_member_start_at(struct hub_member *m, int64_t cursor)
{
    m->cursor = cursor;
}

void hub_member_signal(struct hub_member *m, struct frame *signal)
{
    m->ops->write(m, &signal, 1);
}

void hub_member_begin_catchup(struct hub_member *m)
{
    m->state = HUB_MEMBER_CATCHING_UP;
}

void hub_member_go_live(struct hub_member *m)
{
    for (size_t i = 0; i < m->held_count; i++)
        member_write_one(m, m->held[(m->held_head + i) % m->held_capacity]);
    held_release_storage(m);
    m->held_overflowed = false;
    m->state = HUB_MEMBER_LIVE;
}

void hub_ingest_up(struct hub *hub, int64_t baseline, bool gap_fill)
{
    hub->generation++;
    hub->live_generation = hub->generation;
    if (baseline > hub->high_water)
        hub->high_water = baseline;

    /* Streams that opened before any position was known start here. */
    for (size_t i = 0; i < hub->bucket_count; i++) {
        for (struct hub_consumer *c = hub->buckets[i]; c != NULL; c = c->bucket_next) {
            for (struct list_node *n = c->members.next; n != &c->members; n = n->next) {
                struct hub_member *m = container_of(n, struct hub_member, link);
                if (m->cursor == HUB_CURSOR_UNSET && m->catchup.job == NULL) {
                    m->cursor = hub->high_water;
                    hub_member_go_live(m);
                }
            }
        }
    }
    if (hub->resync != NULL)
        hub->resync(hub, gap_fill, hub->resync_arg);
}

void hub_ingest_down(struct hub *hub)
{
    hub->live_generation = 0;
}

uint64_t hub_live_generation(const struct hub *hub)
{
    return hub->live_generation;
}

int64_t hub_high_water(const struct hub *hub)
{
    return hub->high_water;
}

bool hub_has_consumer(const struct hub *hub, const char *subscriber, size_t subscriber_len)
{
    return find_consumer(hub, subscriber, subscriber_len, hash_id(subscriber, subscriber_len)) !=
           NULL;
}

size_t hub_consumer_count(const struct hub *hub)
{
    return hub->consumer_count;
}

size_t hub_consumer_member_count(const struct hub *hub, const char *id, size_t len)
{
    const struct hub_consumer *c = find_consumer(hub, id, len, hash_id(id, len));
    return c != NULL ? c->member_count : 0;
}

void hub_each_consumer(struct hub *hub, hub_consumer_fn fn, void *arg)
{
    for (size_t i = 0; i < hub->bucket_count; i++) {
        for (struct hub_consumer *c = hub->buckets[i]; c != NULL; c = c->bucket_next)
            fn(c, arg);
    }
}

const char *hub_consumer_id(const struct hub_consumer *c)
{
    return c->id;
}

struct list_node *hub_consumer_members(struct hub_consumer *c)
{
    return &c->members;
}
