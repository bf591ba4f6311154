/* Frames: formatted once, validated payloads, shared by reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/frame.h"

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

static void frame_new_event__pretty_printed_payload__one_data_line(void **state)
{
    (void)state;
    /* Compaction removes the line breaks between tokens, so a payload is
     * always a single data line; spaces inside strings are kept. */
    enum frame_error err;
    struct frame *f = new_event(3, "t", "{\n  \"a b\": [\r\n    1,\n    \"x y\"\n  ]\n}\n", &err);
    assert_non_null(f);
    assert_int_equal(err, FRAME_OK);
    assert_bytes(f, "id: 3\nevent: t\ndata: {\"a b\":[1,\"x y\"]}\n\n");
    frame_unref(f);
}

static void frame_new_event__empty_type__message_event(void **state)
{
    (void)state;
    enum frame_error err;
    struct frame *f = new_event(4, "", "{}", &err);
    assert_non_null(f);
    assert_bytes(f, "id: 4\ndata: {}\n\n");
    frame_unref(f);
}

static void assert_ws_text(struct frame *f, const char *expected)
{
    size_t len = 0;
    const char *text = frame_ws_text(f, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(expected));
    assert_memory_equal(text, expected, len);
}

static void frame_ws_text__empty_type__message_within_its_allocation(void **state)
{
    (void)state;
    enum frame_error err;
    /* The shortest message: "message" once overran the buffer sized for an
     * empty type (AddressSanitizer saw it). */
    struct frame *f = new_event(4, "", "{}", &err);
    assert_non_null(f);
    assert_ws_text(f, "{\"id\":\"4\",\"event\":\"message\",\"data\":{}}");
    frame_unref(f);
}

static void frame_ws_text__escaped_type__json_string(void **state)
{
    (void)state;
    enum frame_error err;
    struct frame *f = new_event(12, "a\"b\\c\td", "{\"n\": 1.50}", &err);
    assert_non_null(f);
    assert_ws_text(f, "{\"id\":\"12\",\"event\":\"a\\\"b\\\\c\\u0009d\",\"data\":{\"n\":1.50}}");
    frame_unref(f);
}

static void frame_new_event__type_with_spaces_and_unicode__kept(void **state)
{
    (void)state;
    enum frame_error err;
    struct frame *f = new_event(4, "user created \xc3\xa9", "{}", &err);
    assert_non_null(f);
    assert_bytes(f, "id: 4\nevent: user created \xc3\xa9\ndata: {}\n\n");
    frame_unref(f);
}

static void frame_new_event__bad_ids__refused(void **state)
{
    (void)state;
    enum frame_error err;
    assert_null(new_event(-1, "t", "{}", &err));
    assert_int_equal(err, FRAME_BAD_ID);
    assert_null(new_event(INT64_MIN, "t", "{}", &err));
    assert_int_equal(err, FRAME_BAD_ID);
    struct frame *f = new_event(INT64_MAX, "t", "{}", &err);
    assert_non_null(f);
    assert_bytes(f, "id: 9223372036854775807\nevent: t\ndata: {}\n\n");
    frame_unref(f);
}

static void frame_new_event__type_with_nul_or_cr__refused(void **state)
{
    (void)state;
    enum frame_error err = FRAME_OK;
    assert_null(frame_new_event(1, "a\0b", 3, "{}", 2, 0, &err));
    assert_int_equal(err, FRAME_BAD_TYPE);
    assert_null(frame_new_event(1, "a\r", 2, "{}", 2, 0, &err));
    assert_int_equal(err, FRAME_BAD_TYPE);
}

static void frame_new_event__empty_or_blank_payload__invalid(void **state)
{
    (void)state;
    enum frame_error err = FRAME_OK;
    assert_null(frame_new_event(1, "t", 1, "", 0, 0, &err));
    assert_int_equal(err, FRAME_PAYLOAD_INVALID);
    assert_null(new_event(1, "t", " \n ", &err));
    assert_int_equal(err, FRAME_PAYLOAD_INVALID);
    assert_null(new_event(1, "t", "{} {}", &err));
    assert_int_equal(err, FRAME_PAYLOAD_INVALID);
    assert_null(new_event(1, "t", "null", &err));
    assert_int_equal(err, FRAME_PAYLOAD_NOT_OBJECT);
    assert_null(new_event(1, "t", "42", &err));
    assert_int_equal(err, FRAME_PAYLOAD_NOT_OBJECT);
}

static void frame_new_event__payload_not_terminated__stays_within_len(void **state)
{
    (void)state;
    /* Exactly len bytes on the heap: ASan reports any over-read. */
    const char src[] = "{\"k\": [1, 2]}";
    size_t len = sizeof(src) - 1;
    char *payload = malloc(len);
    assert_non_null(payload);
    memcpy(payload, src, len);
    enum frame_error err;
    struct frame *f = frame_new_event(9, "t", 1, payload, len, 0, &err);
    assert_non_null(f);
    assert_bytes(f, "id: 9\nevent: t\ndata: {\"k\":[1,2]}\n\n");
    frame_unref(f);
    assert_null(frame_new_event(9, "t", 1, payload, len - 1, 0, &err));
    assert_int_equal(err, FRAME_PAYLOAD_INVALID);
    free(payload);
}

static void frame_new_event__big_then_small__scratch_reused_correctly(void **state)
{
    (void)state;
    /* A large payload grows (then trims) the scratch buffer; later small
     * events must not see any of its bytes. */
    size_t pad = 200 * 1024;
    char *big = malloc(pad + 16);
    assert_non_null(big);
    strcpy(big, "{\"p\":\"");
    memset(big + 6, 'y', pad);
    strcpy(big + 6 + pad, "\"}");
    enum frame_error err;
    struct frame *a = new_event(1, "t", big, &err);
    assert_non_null(a);
    struct frame *b = new_event(2, "t", "{ \"q\" : 1 }", &err);
    assert_non_null(b);
    assert_bytes(b, "id: 2\nevent: t\ndata: {\"q\":1}\n\n");
    struct frame *c = new_event(3, "t", "{\"r\":[]}", &err);
    assert_bytes(c, "id: 3\nevent: t\ndata: {\"r\":[]}\n\n");
    assert_int_equal(a->len, strlen("id: 1\nevent: t\ndata: {\"p\":\"\"}\n\n") + pad);
    frame_unref(a);
    frame_unref(b);
    frame_unref(c);
    free(big);
}

static void frame_unref__many_holders__freed_by_the_last(void **state)
{
    (void)state;
    enum frame_error err;
    struct frame *f = new_event(10, "t", "{}", &err);
    struct frame *holders[5];
    for (int i = 0; i < 5; i++)
        holders[i] = frame_ref(f);
    assert_int_equal(f->refs, 6);
    frame_unref(f);
    for (int i = 0; i < 4; i++)
        frame_unref(holders[i]);
    assert_int_equal(holders[4]->refs, 1);
    assert_bytes(holders[4], "id: 10\nevent: t\ndata: {}\n\n");
    frame_unref(holders[4]); /* ASan: a leak or a double free shows here */
    frame_unref(NULL);       /* documented as harmless */
}

static void frame_error_name__every_error__stable_name(void **state)
{
    (void)state;
    assert_string_equal(frame_error_name(FRAME_OK), "ok");
    assert_string_equal(frame_error_name(FRAME_BAD_ID), "bad_id");
    assert_string_equal(frame_error_name(FRAME_BAD_TYPE), "bad_type");
    assert_string_equal(frame_error_name(FRAME_PAYLOAD_INVALID), "payload_invalid_json");
    assert_string_equal(frame_error_name(FRAME_PAYLOAD_NOT_OBJECT), "payload_not_object");
    assert_string_equal(frame_error_name(FRAME_NO_MEMORY), "no_memory");
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
        cmocka_unit_test(frame_new_event__pretty_printed_payload__one_data_line),
        cmocka_unit_test(frame_new_event__empty_type__message_event),
        cmocka_unit_test(frame_new_event__type_with_spaces_and_unicode__kept),
        cmocka_unit_test(frame_new_event__bad_ids__refused),
        cmocka_unit_test(frame_new_event__type_with_nul_or_cr__refused),
        cmocka_unit_test(frame_new_event__empty_or_blank_payload__invalid),
        cmocka_unit_test(frame_new_event__payload_not_terminated__stays_within_len),
        cmocka_unit_test(frame_new_event__big_then_small__scratch_reused_correctly),
        cmocka_unit_test(frame_unref__many_holders__freed_by_the_last),
        cmocka_unit_test(frame_error_name__every_error__stable_name),
        cmocka_unit_test(frame_ws_text__empty_type__message_within_its_allocation),
        cmocka_unit_test(frame_ws_text__escaped_type__json_string),
    };
    return cmocka_run_group_tests(tests, NULL, release_scratch);
}
