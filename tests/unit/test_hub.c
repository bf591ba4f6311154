/* Hub routing and the per-stream delivery rule. Members here record what
 * they are given instead of writing to a socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/frame.h"
#include "core/hub.h"

struct recorder {
    struct hub_member member;
    int64_t ids[64];
    size_t count;
};

static void record_write(struct hub_member *m, struct frame *const *frames, size_t count)
{
    struct recorder *r = container_of(m, struct recorder, member);
    for (size_t i = 0; i < count; i++) {
        assert_true(r->count < 64);
        r->ids[r->count++] = frames[i]->id;
    }
}

static size_t nothing_pending(const struct hub_member *m)
{
    (void)m;
    return 0;
}

static const struct hub_member_ops recorder_ops = {.write = record_write,
                                                   .pending = nothing_pending};

static struct frame *event(int64_t id)
{
    enum frame_error err;
    struct frame *f = frame_new_event(id, "t", 1, "{}", 2, 0.0, &err);
    assert_non_null(f);
    return f;
}

/* Publishes event id for subscriber and drops the creator's reference. */
static size_t publish(struct hub *hub, const char *subscriber, int64_t id)
{
    struct frame *f = event(id);
    size_t taken = hub_publish(hub, subscriber, strlen(subscriber), f);
    frame_unref(f);
    return taken;
}

static void join_live(struct hub *hub, const char *consumer, struct recorder *r)
{
    memset(r, 0, sizeof(*r));
    assert_true(hub_join(hub, consumer, &r->member, &recorder_ops, false, 0));
}

static void assert_ids(const struct recorder *r, const int64_t *expected, size_t count)
{
    assert_int_equal(r->count, count);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(r->ids[i], expected[i]);
}

static int setup_live_hub(void **state)
{
    struct hub *hub = hub_new(4);
    assert_non_null(hub);
    hub_ingest_up(hub, 10, false);
    *state = hub;
    return 0;
}

static int teardown_hub(void **state)
{
    hub_free(*state);
    frame_release_scratch();
    return 0;
}

static void hub_publish__two_members_of_one_consumer__both_written(void **state)
{
    struct hub *hub = *state;
    struct recorder a, b;
    join_live(hub, "toto", &a);
    join_live(hub, "toto", &b);
    assert_int_equal(publish(hub, "toto", 11), 2);
    int64_t expected[] = {11};
    assert_ids(&a, expected, 1);
    assert_ids(&b, expected, 1);
    hub_leave(hub, &a.member);
    hub_leave(hub, &b.member);
}

static void hub_publish__other_consumer__not_written(void **state)
{
    struct hub *hub = *state;
    struct recorder toto, titi;
    join_live(hub, "toto", &toto);
    join_live(hub, "titi", &titi);
    assert_int_equal(publish(hub, "toto", 11), 1);
    assert_int_equal(publish(hub, "nobody", 12), 0);
    assert_int_equal(toto.count, 1);
    assert_int_equal(titi.count, 0);
    /* A prefix of another id is a different consumer. */
    assert_int_equal(publish(hub, "tot", 13), 0);
    hub_leave(hub, &toto.member);
    hub_leave(hub, &titi.member);
}

static void hub_join__without_last_id__starts_at_high_water(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    assert_int_equal(hub_high_water(hub), 10);
    join_live(hub, "toto", &r);
    assert_int_equal(r.member.cursor, 10);
    publish(hub, "toto", 9); /* older than the stream: not sent */
    publish(hub, "toto", 11);
    int64_t expected[] = {11};
    assert_ids(&r, expected, 1);
    hub_leave(hub, &r.member);
}

static void hub_publish__duplicate_or_older_id__skipped(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    join_live(hub, "toto", &r);
    publish(hub, "toto", 11);
    publish(hub, "toto", 11); /* republished (at-least-once ingest) */
    publish(hub, "toto", 12);
    publish(hub, "toto", 5);
    int64_t expected[] = {11, 12};
    assert_ids(&r, expected, 2);
    assert_int_equal(hub_high_water(hub), 12);
    hub_leave(hub, &r.member);
}

static void hub_member_go_live__held_events__released_above_cursor_in_order(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    memset(&r, 0, sizeof(r));
    assert_true(hub_join(hub, "toto", &r.member, &recorder_ops, true, 3));
    assert_int_equal(r.member.state, HUB_MEMBER_CATCHING_UP);
    publish(hub, "toto", 11); /* live events arrive during the replay */
    publish(hub, "toto", 12);
    assert_int_equal(r.count, 0);

    /* The replay delivers 4..11 from the table (11 overlaps the held one). */
    struct frame *page[3] = {event(4), event(10), event(11)};
    hub_member_deliver(&r.member, page, 3);
    for (size_t i = 0; i < 3; i++)
        frame_unref(page[i]);
    hub_member_go_live(&r.member);
    publish(hub, "toto", 13);

    int64_t expected[] = {4, 10, 11, 12, 13};
    assert_ids(&r, expected, 5);
    assert_int_equal(r.member.state, HUB_MEMBER_LIVE);
    hub_leave(hub, &r.member);
}

static void hub_member_deliver__page_overlapping_cursor__only_new_ids(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    memset(&r, 0, sizeof(r));
    assert_true(hub_join(hub, "toto", &r.member, &recorder_ops, true, 5));
    struct frame *page[4] = {event(3), event(5), event(6), event(7)};
    hub_member_deliver(&r.member, page, 4);
    for (size_t i = 0; i < 4; i++)
        frame_unref(page[i]);
    int64_t expected[] = {6, 7};
    assert_ids(&r, expected, 2);
    assert_int_equal(r.member.cursor, 7);
    hub_leave(hub, &r.member);
}

static void hub_publish__held_ring_full__cleared_and_flagged(void **state)
{
    struct hub *hub = *state; /* held_max is 4 */
    struct recorder r;
    memset(&r, 0, sizeof(r));
    assert_true(hub_join(hub, "toto", &r.member, &recorder_ops, true, 0));
    for (int64_t id = 11; id <= 15; id++)
        publish(hub, "toto", id);
    assert_true(r.member.held_overflowed);
    assert_int_equal(r.count, 0);
    hub_leave(hub, &r.member); /* drops whatever is still held (ASan: no leak) */
}

static void hub_leave__last_member__consumer_removed(void **state)
{
    struct hub *hub = *state;
    struct recorder a, b;
    join_live(hub, "toto", &a);
    join_live(hub, "toto", &b);
    assert_int_equal(hub_consumer_count(hub), 1);
    hub_leave(hub, &a.member);
    assert_true(hub_has_consumer(hub, "toto", 4));
    hub_leave(hub, &b.member);
    assert_false(hub_has_consumer(hub, "toto", 4));
    assert_int_equal(hub_consumer_count(hub), 0);
}

static void hub_join__many_consumers__each_routed(void **state)
{
    struct hub *hub = *state;
    static struct recorder members[500];
    char name[16];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        join_live(hub, name, &members[i]);
    }
    assert_int_equal(hub_consumer_count(hub), 500);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        assert_int_equal(publish(hub, name, 100 + i), 1);
    }
    for (int i = 0; i < 500; i++) {
        assert_int_equal(members[i].count, 1);
        assert_int_equal(members[i].ids[0], 100 + i);
        hub_leave(hub, &members[i].member);
    }
}

static void hub_ingest_up__streams_opened_before__start_at_baseline(void **state)
{
    (void)state;
    struct hub *hub = hub_new(16);
    struct recorder r;
    join_live(hub, "toto", &r);
    assert_int_equal(r.member.cursor, HUB_CURSOR_UNSET);
    assert_int_equal(hub_live_generation(hub), 0);
    hub_ingest_up(hub, 20, false);
    assert_int_equal(r.member.cursor, 20);
    assert_int_equal(r.member.state, HUB_MEMBER_LIVE);
    assert_true(hub_live_generation(hub) != 0);
    publish(hub, "toto", 21);
    int64_t expected[] = {21};
    assert_ids(&r, expected, 1);
    hub_ingest_down(hub);
    assert_int_equal(hub_live_generation(hub), 0);
    hub_leave(hub, &r.member);
    hub_free(hub);
}

static void join_catching_up(struct hub *hub, const char *consumer, struct recorder *r,
                             int64_t cursor)
{
    memset(r, 0, sizeof(*r));
    assert_true(hub_join(hub, consumer, &r->member, &recorder_ops, true, cursor));
    assert_int_equal(r->member.state, HUB_MEMBER_CATCHING_UP);
}

/* Delivers a replay page of ids first..last, as the replay module would. */
static void deliver_range(struct hub_member *m, int64_t first, int64_t last)
{
    struct frame *page[32] = {NULL};
    size_t count = 0;
    for (int64_t id = first; id <= last; id++) {
        assert_true(count < 32);
        page[count++] = event(id);
    }
    hub_member_deliver(m, page, count);
    for (size_t i = 0; i < count; i++)
        frame_unref(page[i]);
}

static void hub_publish__held_ring_overflowed__replay_and_go_live_exactly_once(void **state)
{
    struct hub *hub = *state; /* held_max is 4 */
    struct recorder r;
    join_catching_up(hub, "toto", &r, 10);
    for (int64_t id = 11; id <= 15; id++)
        publish(hub, "toto", id); /* 15 overflows: 11..14 dropped, 15 not held */
    assert_true(r.member.held_overflowed);
    publish(hub, "toto", 16); /* held again after the overflow */
    publish(hub, "toto", 17);
    assert_int_equal(r.member.held_count, 2);

    /* Seeing the flag, the replay reads on up to what the table holds. */
    deliver_range(&r.member, 11, 15);
    hub_member_go_live(&r.member);
    assert_false(r.member.held_overflowed);
    assert_int_equal(r.member.state, HUB_MEMBER_LIVE);
    publish(hub, "toto", 18);

    int64_t expected[] = {11, 12, 13, 14, 15, 16, 17, 18};
    assert_ids(&r, expected, 8);
    hub_leave(hub, &r.member);
}

static void hub_member_go_live__held_at_or_below_cursor__nothing_more_written(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    join_catching_up(hub, "toto", &r, 10);
    publish(hub, "toto", 11);
    publish(hub, "toto", 12);
    deliver_range(&r.member, 11, 13); /* the table already had all of them */
    hub_member_go_live(&r.member);
    int64_t expected[] = {11, 12, 13};
    assert_ids(&r, expected, 3);
    assert_int_equal(r.member.cursor, 13);
    assert_int_equal(r.member.held_count, 0);
    hub_leave(hub, &r.member);
}

static void hub_member_go_live__nothing_held__live_from_cursor(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    join_catching_up(hub, "toto", &r, 10);
    hub_member_go_live(&r.member);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.member.state, HUB_MEMBER_LIVE);
    publish(hub, "toto", 10); /* not above the cursor */
    publish(hub, "toto", 11);
    int64_t expected[] = {11};
    assert_ids(&r, expected, 1);
    hub_leave(hub, &r.member);
}

static void hub_publish__live_and_catching_up_members__written_and_held(void **state)
{
    struct hub *hub = *state;
    struct recorder live, replaying;
    join_live(hub, "toto", &live);
    join_catching_up(hub, "toto", &replaying, 2);
    assert_int_equal(publish(hub, "toto", 11), 2); /* one written, one held */
    int64_t expected[] = {11};
    assert_ids(&live, expected, 1);
    assert_int_equal(replaying.count, 0);
    assert_int_equal(replaying.member.held_count, 1);

    deliver_range(&replaying.member, 3, 4);
    hub_member_go_live(&replaying.member);
    int64_t replayed[] = {3, 4, 11};
    assert_ids(&replaying, replayed, 3);
    hub_leave(hub, &live.member);
    hub_leave(hub, &replaying.member);
}

static void hub_member_begin_catchup__live_member__holds_until_go_live(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    join_live(hub, "toto", &r);
    publish(hub, "toto", 11);
    hub_member_begin_catchup(&r.member); /* a gap fill starts */
    publish(hub, "toto", 13);
    publish(hub, "toto", 14);
    int64_t before[] = {11};
    assert_ids(&r, before, 1);
    deliver_range(&r.member, 12, 13); /* 12 was lost while the ingest was down */
    hub_member_go_live(&r.member);
    int64_t after[] = {11, 12, 13, 14};
    assert_ids(&r, after, 4);
    hub_leave(hub, &r.member);
}

static void hub_leave__catching_up_member_with_held_events__released(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    join_catching_up(hub, "toto", &r, 0);
    publish(hub, "toto", 11);
    publish(hub, "toto", 12);
    assert_int_equal(r.member.held_count, 2);
    hub_leave(hub, &r.member); /* ASan: the held references must be dropped */
    assert_null(r.member.held);
    assert_false(hub_has_consumer(hub, "toto", 4));
    hub_leave(hub, &r.member); /* leaving twice is harmless */
    assert_int_equal(r.count, 0);
}

static struct frame *typed_event(int64_t id, const char *type)
{
    enum frame_error err;
    struct frame *f = frame_new_event(id, type, strlen(type), "{}", 2, 0.0, &err);
    assert_non_null(f);
    return f;
}

static void hub_member_start_at__catching_up__held_released_above_it(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    join_catching_up(hub, "toto", &r, 0);
    publish(hub, "toto", 11);
    publish(hub, "toto", 12);
    hub_member_start_at(&r.member, 11); /* initial=N decided the start */
    hub_member_go_live(&r.member);
    const int64_t expected[] = {12};
    assert_ids(&r, expected, 1);
    hub_leave(hub, &r.member);
}

/* A filtered member is written only its types, yet its cursor passes every
 * id: live, replayed (runs split around the others) and held alike. */
static void hub_filter__other_types__skipped_cursor_moves(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    struct event_filter filter = {0};
    assert_int_equal(event_filter_add(&filter, "a"), EVENT_FILTER_ADDED);
    join_catching_up(hub, "toto", &r, 10);
    r.member.filter = &filter;

    struct frame *page[5] = {typed_event(11, "a"), typed_event(12, "b"), typed_event(13, "a"),
                             typed_event(14, "a"), typed_event(15, "b")};
    hub_member_deliver(&r.member, page, 5);
    assert_int_equal(r.member.cursor, 15);
    struct frame *held = typed_event(16, "b");
    hub_publish(hub, "toto", 4, held);
    hub_member_go_live(&r.member);
    assert_int_equal(r.member.cursor, 16);
    struct frame *live[2] = {typed_event(17, "a"), typed_event(18, "c")};
    hub_publish(hub, "toto", 4, live[0]);
    hub_publish(hub, "toto", 4, live[1]);
    assert_int_equal(r.member.cursor, 18);

    const int64_t expected[] = {11, 13, 14, 17};
    assert_ids(&r, expected, 4);
    for (size_t i = 0; i < 5; i++)
        frame_unref(page[i]);
    frame_unref(held);
    frame_unref(live[0]);
    frame_unref(live[1]);
    event_filter_free(&filter);
    hub_leave(hub, &r.member);
}

static size_t signals_seen;

static void count_signal(struct hub_member *m, struct frame *const *frames, size_t count)
{
    (void)m;
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(frames[i]->id, 0);
        signals_seen++;
    }
}

static const struct hub_member_ops signal_ops = {.write = count_signal, .pending = nothing_pending};

static void hub_member_signal__catching_up__written_cursor_kept(void **state)
{
    struct hub *hub = *state;
    struct hub_member m;
    assert_true(hub_join(hub, "toto", &m, &signal_ops, true, 42));
    struct frame *signal = frame_new_signal("history-gone", "{\"last_event_id\":\"42\"}");
    assert_non_null(signal);
    signals_seen = 0;
    hub_member_signal(&m, signal);
    assert_int_equal(signals_seen, 1);
    assert_int_equal(m.cursor, 42);
    assert_string_equal(signal->bytes, "event: history-gone\ndata: {\"last_event_id\":\"42\"}\n\n");
    frame_unref(signal);
    hub_leave(hub, &m);
}

static void hub_high_water__publishes_and_baselines__only_rises(void **state)
{
    struct hub *hub = *state;
    assert_int_equal(hub_high_water(hub), 10);
    publish(hub, "nobody", 15); /* unrouted events still count */
    assert_int_equal(hub_high_water(hub), 15);
    publish(hub, "nobody", 12);
    assert_int_equal(hub_high_water(hub), 15);
    hub_ingest_up(hub, 7, false); /* a lower baseline does not lower it */
    assert_int_equal(hub_high_water(hub), 15);
    hub_ingest_up(hub, 40, false);
    assert_int_equal(hub_high_water(hub), 40);
    struct recorder r;
    join_live(hub, "toto", &r);
    assert_int_equal(r.member.cursor, 40);
    hub_leave(hub, &r.member);
}

struct resync_calls {
    int count;
    bool gap_fill;
    struct hub *hub;
};

static void count_resync(struct hub *hub, bool gap_fill, void *arg)
{
    struct resync_calls *calls = arg;
    calls->count++;
    calls->gap_fill = gap_fill;
    calls->hub = hub;
}

static void hub_ingest_up__every_reconnect__new_generation_and_resync(void **state)
{
    (void)state;
    struct hub *hub = hub_new(16);
    struct resync_calls calls = {0, false, NULL};
    hub_set_resync_hook(hub, count_resync, &calls);
    assert_int_equal(hub_live_generation(hub), 0);
    assert_int_equal(hub_high_water(hub), HUB_CURSOR_UNSET);

    hub_ingest_up(hub, 5, false);
    uint64_t first = hub_live_generation(hub);
    assert_true(first != 0);
    assert_int_equal(calls.count, 1);
    assert_false(calls.gap_fill);
    assert_ptr_equal(calls.hub, hub);

    hub_ingest_down(hub);
    assert_int_equal(hub_live_generation(hub), 0);
    hub_ingest_up(hub, 5, true);
    uint64_t second = hub_live_generation(hub);
    assert_true(second != 0 && second != first);
    assert_int_equal(calls.count, 2);
    assert_true(calls.gap_fill);
    hub_free(hub);
}

static void hub_ingest_up__unset_member_with_replay__left_to_the_replay(void **state)
{
    (void)state;
    struct hub *hub = hub_new(16);
    struct recorder waiting, replaying;
    join_live(hub, "toto", &waiting); /* no position known yet: parked */
    join_live(hub, "toto", &replaying);
    int job;
    replaying.member.catchup.job = &job; /* as replay.c marks a running catch-up */
    hub_ingest_up(hub, 20, false);
    assert_int_equal(waiting.member.state, HUB_MEMBER_LIVE);
    assert_int_equal(waiting.member.cursor, 20);
    assert_int_equal(replaying.member.state, HUB_MEMBER_CATCHING_UP);
    assert_int_equal(replaying.member.cursor, HUB_CURSOR_UNSET);
    replaying.member.catchup.job = NULL;
    hub_leave(hub, &waiting.member);
    hub_leave(hub, &replaying.member);
    hub_free(hub);
}

struct visit {
    int consumers;
    int members;
    bool saw_a, saw_b;
};

static void visit_consumer(struct hub_consumer *c, void *arg)
{
    struct visit *v = arg;
    v->consumers++;
    const char *id = hub_consumer_id(c);
    if (strcmp(id, "a") == 0)
        v->saw_a = true;
    if (strcmp(id, "b") == 0)
        v->saw_b = true;
    struct list_node *head = hub_consumer_members(c);
    for (struct list_node *n = head->next; n != head; n = n->next)
        v->members++;
}

static void hub_each_consumer__two_consumers__each_visited_once(void **state)
{
    struct hub *hub = *state;
    struct recorder a1, a2, b1;
    join_live(hub, "a", &a1);
    join_live(hub, "a", &a2);
    join_live(hub, "b", &b1);
    struct visit v = {0, 0, false, false};
    hub_each_consumer(hub, visit_consumer, &v);
    assert_int_equal(v.consumers, 2);
    assert_int_equal(v.members, 3);
    assert_true(v.saw_a && v.saw_b);
    hub_leave(hub, &a1.member);
    hub_leave(hub, &a2.member);
    hub_leave(hub, &b1.member);
}

static void hub_publish__subscriber_by_length__not_by_terminator(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    join_live(hub, "toto", &r);
    struct frame *f = event(11);
    assert_int_equal(hub_publish(hub, "totoX", 4, f), 1);
    assert_int_equal(hub_publish(hub, "toto", 3, f), 0);
    frame_unref(f);
    assert_true(hub_has_consumer(hub, "toto!", 4));
    assert_false(hub_has_consumer(hub, "toto", 3));
    hub_leave(hub, &r.member);
}

static void hub_join__after_consumer_freed__fresh_consumer(void **state)
{
    struct hub *hub = *state;
    struct recorder r;
    join_live(hub, "toto", &r);
    hub_leave(hub, &r.member);
    assert_int_equal(hub_consumer_count(hub), 0);
    join_live(hub, "toto", &r);
    assert_int_equal(hub_consumer_count(hub), 1);
    assert_int_equal(publish(hub, "toto", 11), 1);
    int64_t expected[] = {11};
    assert_ids(&r, expected, 1);
    hub_leave(hub, &r.member);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hub_publish__two_members_of_one_consumer__both_written,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_publish__other_consumer__not_written, setup_live_hub,
                                        teardown_hub),
        cmocka_unit_test_setup_teardown(hub_join__without_last_id__starts_at_high_water,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_publish__duplicate_or_older_id__skipped, setup_live_hub,
                                        teardown_hub),
        cmocka_unit_test_setup_teardown(
            hub_member_go_live__held_events__released_above_cursor_in_order, setup_live_hub,
            teardown_hub),
        cmocka_unit_test_setup_teardown(hub_member_deliver__page_overlapping_cursor__only_new_ids,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_publish__held_ring_full__cleared_and_flagged,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_leave__last_member__consumer_removed, setup_live_hub,
                                        teardown_hub),
        cmocka_unit_test_setup_teardown(hub_join__many_consumers__each_routed, setup_live_hub,
                                        teardown_hub),
        cmocka_unit_test(hub_ingest_up__streams_opened_before__start_at_baseline),
        cmocka_unit_test_setup_teardown(
            hub_publish__held_ring_overflowed__replay_and_go_live_exactly_once, setup_live_hub,
            teardown_hub),
        cmocka_unit_test_setup_teardown(
            hub_member_go_live__held_at_or_below_cursor__nothing_more_written, setup_live_hub,
            teardown_hub),
        cmocka_unit_test_setup_teardown(hub_member_go_live__nothing_held__live_from_cursor,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_publish__live_and_catching_up_members__written_and_held,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_member_begin_catchup__live_member__holds_until_go_live,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_leave__catching_up_member_with_held_events__released,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_member_start_at__catching_up__held_released_above_it,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_filter__other_types__skipped_cursor_moves,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_member_signal__catching_up__written_cursor_kept,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_high_water__publishes_and_baselines__only_rises,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test(hub_ingest_up__every_reconnect__new_generation_and_resync),
        cmocka_unit_test(hub_ingest_up__unset_member_with_replay__left_to_the_replay),
        cmocka_unit_test_setup_teardown(hub_each_consumer__two_consumers__each_visited_once,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_publish__subscriber_by_length__not_by_terminator,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_join__after_consumer_freed__fresh_consumer,
                                        setup_live_hub, teardown_hub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
