/*
 * NOTIFY payloads: anything a database user can send on the channel. Parsing
 * must never crash or leak, and a parsed complete notification must turn
 * into a frame or a clean error.
 */
#include <stdint.h>
#include <stdlib.h>

#include "frame.h"
#include "notification.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct notification n;
    const char *why = NULL;
    if (!notification_parse((const char *)data, size, &n, &why)) {
        if (why == NULL)
            abort();
        return 0;
    }
    if (n.id <= 0)
        abort();
    if (n.complete) {
        enum frame_error err = FRAME_OK;
        struct frame *f =
            frame_new_event(n.id, n.type, n.type_len, n.payload, n.payload_len, n.timestamp, &err);
        if ((f == NULL) != (err != FRAME_OK))
            abort();
        frame_unref(f);
    }
    notification_clear(&n);
    return 0;
}
