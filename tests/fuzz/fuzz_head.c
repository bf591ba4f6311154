/*
 * Request heads (net/head.c): the target and header fields of every request,
 * in the pieces a transport hands over. The input is a script: two bytes of
 * limit (max_bytes), then records of one op byte (target, name, value or
 * finish) and one length byte followed by that many bytes. Whatever the
 * pieces, the arena never exceeds its limit; a piece with a control
 * character is refused; a finished head has a path starting with '/' or
 * "*", and fields with lower-case names and no control characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_control(const uint8_t *at, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((at[i] < 0x20 && at[i] != '\t') || at[i] == 0x7f)
            return true;
    }
    return false;
}

static bool text_clean(const char *s)
{
    return !has_control((const uint8_t *)s, strlen(s));
}

static void check_finished(const struct head *h, const struct exchange *x)
{
    if (x->path == NULL || (x->path[0] != '/' && strcmp(x->path, "*") != 0) ||
        !text_clean(x->path) || (x->query != NULL && !text_clean(x->query)))
        abort();
    if (x->header_count != h->count || x->header_count > HEAD_MAX_FIELDS)
        abort();
    for (size_t i = 0; i < x->header_count; i++) {
        const char *name = x->headers[i].name;
        for (const char *c = name; *c != '\0'; c++) {
            if (*c >= 'A' && *c <= 'Z')
                abort();
        }
        if (!text_clean(name) || !text_clean(x->headers[i].value))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct head h = {0};
    size_t max_bytes = 1 + ((size_t)data[0] << 8 | data[1]);
    head_reset(&h, max_bytes);
    bool target_started = false;
    size_t i = 2;
    while (i + 2 <= size) {
        unsigned op = data[i] % 4;
        size_t len = data[i + 1];
        i += 2;
        if (len > size - i)
            len = size - i;
        /* An exact-length copy, so ASan sees any overread. */
        char *piece = malloc(len > 0 ? len : 1);
        if (piece == NULL)
            abort();
        memcpy(piece, data + i, len);
        i += len;
        enum http_error error = HTTP_ERROR_COUNT;
        bool ok = true, called = true;
        if (op == 0 && (h.count == 0)) {
            ok = head_add_target(&h, piece, len, &error);
            target_started = true;
        } else if (op == 1 && target_started) {
            ok = head_add_name(&h, piece, len, &error);
        } else if (op == 2 && target_started) {
            ok = head_add_value(&h, piece, len, &error);
        } else if (op == 3 && target_started) {
            struct exchange x = {0};
            ok = head_finish(&h, &x, &error);
            if (ok)
                check_finished(&h, &x);
            free(piece);
            break;
        } else {
            called = false;
        }
        free(piece);
        if (h.len > max_bytes || (h.cap > 0 && h.cap > max_bytes))
            abort();
        if (called && ok && has_control(data + i - len, len))
            abort();
        if (!ok) {
            if (error != HTTP_ERROR_HEADER_TOO_LARGE && error != HTTP_ERROR_BAD_REQUEST &&
                error != HTTP_ERROR_OUT_OF_MEMORY)
                abort();
            break;
        }
    }
    head_free(&h);
    return 0;
}
