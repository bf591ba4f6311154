/*
 * Header values a client controls: X-Consumer-Id and Last-Event-ID. The
 * input is split at its first NUL into the two values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 2);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    copy[size] = '\0';
    copy[size + 1] = '\0';
    const char *consumer = copy;
    const char *last = copy + strlen(copy) + 1;
    if (last > copy + size)
        last = copy + size;

    const char *why = NULL;
    if (!request_consumer_id_valid(consumer, 256, &why) && why == NULL)
        abort();
    int64_t id = -1;
    if (request_parse_last_event_id(last, &id) == LAST_EVENT_ID_PRESENT && id < 0)
        abort();
    free(copy);
    return 0;
}
