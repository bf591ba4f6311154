/*
 * Payload JSON from the database or Debezium: json_compact() must accept
 * exactly valid JSON, never read out of bounds, and produce output that is
 * itself valid, no longer than the input, and a fixed point of compaction.
 * The member walker and string decoder run over the same input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_members(const char *text, size_t size)
{
    struct json_members it;
    struct json_member m;
    if (!json_members_begin(&it, text, size))
        return;
    while (json_members_next(&it, &m) == 1) {
        char *decoded = malloc(m.key_len + 1);
        size_t decoded_len = 0;
        if (decoded != NULL && json_string_decode(m.key, m.key_len, decoded, &decoded_len) &&
            decoded_len > m.key_len)
            abort();
        free(decoded);
        if (m.kind == JSON_KIND_STRING) {
            decoded = malloc(m.value_len + 1);
            if (decoded != NULL)
                (void)json_string_decode(m.value, m.value_len, decoded, &decoded_len);
            free(decoded);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    enum json_kind kind, again_kind;
    char *out = malloc(size + 1);
    char *again = malloc(size + 1);
    if (out == NULL || again == NULL)
        abort();

    size_t n = json_compact(text, size, out, &kind);
    if (kind != JSON_KIND_INVALID) {
        if (n == 0 || n > size)
            abort();
        size_t m = json_compact(out, n, again, &again_kind);
        if (again_kind != kind || m != n || memcmp(out, again, n) != 0)
            abort();
    } else if (n != 0) {
        abort();
    }
    walk_members(text, size);
    free(out);
    free(again);
    return 0;
}
