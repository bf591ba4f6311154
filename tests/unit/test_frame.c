/* Frames: formatted once, validated payloads, shared by reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

static struct frame *new_event(int64_t id, const char *type, const char *payload,
                               enum frame_error *err)
{
    *err = FRAME_OK;
    return frame_new_event(id, type, strlen(type), payload, strlen(payload), 1.5, err);
}

static void assert_bytes(const struct frame *f, const char *expected)
{
    assert_int_equal(f->len, strlen(expected));
    assert_memory_equal(f->bytes, expected, f->len);
}

static void frame_new_event__jsonb_payload__compact_sse_event(void **state)
{
    (void)state;
    enum frame_error err;
    struct frame *f = new_event(1, "insert", "{\"foo\": \"bar\", \"n\": 1.50}", &err);
    assert_non_null(f);
    assert_bytes(f, "id: 1\nevent: insert\ndata: {\"foo\":\"bar\",\"n\":1.50}\n\n");
    assert_int_equal(f->id, 1);
    assert_true(f->timestamp == 1.5);
    frame_unref(f);
}

static void frame_new_event__large_payload__intact(void **state)
{
    (void)state;
    size_t pad = 1024 * 1024;
    char *payload = malloc(pad + 32);
    assert_non_null(payload);
    strcpy(payload, "{\"pad\": \"");
    memset(payload + 9, 'x', pad);
    strcpy(payload + 9 + pad, "\"}");
    enum frame_error err;
    struct frame *f = new_event(5, "big", payload, &err);
    assert_non_null(f);
    assert_int_equal(f->len, strlen("id: 5\nevent: big\ndata: {\"pad\":\"\"}\n\n") + pad);
    assert_memory_equal(f->bytes + f->len - 4, "\"}\n\n", 4);
    frame_unref(f);
    free(payload);
}

static void frame_new_event__bad_rows__refused_with_reason(void **state)
{
    (void)state;
    enum frame_error err;
    assert_null(new_event(1, "t", "[1, 2]", &err));
    assert_int_equal(err, FRAME_PAYLOAD_NOT_OBJECT);
    assert_null(new_event(1, "t", "\"text\"", &err));
    assert_int_equal(err, FRAME_PAYLOAD_NOT_OBJECT);
    assert_null(new_event(1, "t", "{\"a\":", &err));
    assert_int_equal(err, FRAME_PAYLOAD_INVALID);
    assert_null(new_event(1, "a\nb", "{}", &err));
    assert_int_equal(err, FRAME_BAD_TYPE);
    assert_null(new_event(0, "t", "{}", &err));
    assert_int_equal(err, FRAME_BAD_ID);
    assert_string_equal(frame_error_name(FRAME_PAYLOAD_NOT_OBJECT), "payload_not_object");
}

static void frame_ref__extra_reference__frame_outlives_creator(void **state)
{
    (void)state;
    enum frame_error err;
    struct frame *f = new_event(2, "t", "{}", &err);
    struct frame *shared = frame_ref(f);
    assert_ptr_equal(shared, f);
    frame_unref(f);
    assert_bytes(shared, "id: 2\nevent: t\ndata: {}\n\n"); /* ASan: still alive */
    frame_unref(shared);
}

static int release_scratch(void **state)
{
    (void)state;
    frame_release_scratch();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frame_new_event__jsonb_payload__compact_sse_event),
        cmocka_unit_test(frame_new_event__large_payload__intact),
        cmocka_unit_test(frame_new_event__bad_rows__refused_with_reason),
        cmocka_unit_test(frame_ref__extra_reference__frame_outlives_creator),
    };
    return cmocka_run_group_tests(tests, NULL, release_scratch);
}
