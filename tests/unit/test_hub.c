/* Hub routing and the per-stream delivery rule. Members here record what
 * they are given instead of writing to a socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "hub.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hub_publish__two_members_of_one_consumer__both_written,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_publish__other_consumer__not_written, setup_live_hub,
                                        teardown_hub),
        cmocka_unit_test_setup_teardown(hub_join__without_last_id__starts_at_high_water,
                                        setup_live_hub, teardown_hub),
        cmocka_unit_test_setup_teardown(hub_publish__duplicate_or_older_id__skipped,
                                        setup_live_hub, teardown_hub),
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
