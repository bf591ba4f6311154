/*
 * Header values a client controls: X-Consumer-Id and Last-Event-ID. The
 * input is split at its first NUL into the two values. The first is also
 * read as a consumer list, and the second as a cursor for that list; a
 * cursor that parses must format back to the same positions.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/request.h"
#include "core/stream_cursor.h"

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

    struct consumer_set set = {0};
    if (request_add_consumers(&set, consumer, true, 256, 32, &why) == REQUEST_CONSUMERS_OK &&
        set.count > 0) {
        consumer_set_seal(&set);
        int64_t *positions = malloc(set.count * sizeof(*positions));
        int64_t *again = malloc(set.count * sizeof(*again));
        char *text = malloc(stream_cursor_max_len(set.count));
        if (positions == NULL || again == NULL || text == NULL)
            abort();
        enum stream_cursor_kind kind = stream_cursor_parse(last, &set, positions);
        if (kind == STREAM_CURSOR_PLAIN || kind == STREAM_CURSOR_COMPOSITE) {
            int64_t base = 0;
            for (size_t i = 0; i < set.count; i++)
                if (positions[i] != STREAM_CURSOR_NONE && positions[i] > base)
                    base = positions[i];
            size_t len = stream_cursor_format(text, base, positions, set.count, set.tag);
            if (len >= stream_cursor_max_len(set.count) ||
                stream_cursor_parse(text, &set, again) != STREAM_CURSOR_COMPOSITE ||
                memcmp(positions, again, set.count * sizeof(*again)) != 0)
                abort();
        }
        free(positions);
        free(again);
        free(text);
    }
    consumer_set_free(&set);
    free(copy);
    return 0;
}
