/*
 * NOTIFY payloads: anything a database user can send on the channel. Parsing
 * must never crash or leak, an accepted hint has a positive id and a
 * subscriber of the length it claims, and a signed shape splits exactly
 * after its 64 hex digits and a space.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/notification.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct notification n;
    const char *why = NULL;
    unsigned char mac[32];
    const char *body = NULL;
    size_t body_len = 0;
    if (notification_split_signed((const char *)data, size, mac, &body, &body_len) &&
        (body != (const char *)data + 65 || body_len != size - 65))
        abort();
    if (!notification_parse((const char *)data, size, &n, &why)) {
        if (why == NULL)
            abort();
        return 0;
    }
    if (n.id <= 0)
        abort();
    if (n.subscriber != NULL && strlen(n.subscriber) != n.subscriber_len)
        abort();
    notification_clear(&n);
    return 0;
}
