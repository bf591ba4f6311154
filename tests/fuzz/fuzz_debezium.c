/*
 * Debezium messages: anything a client allowed to publish on the NATS
 * subjects can send. The first byte picks the subject the message arrives
 * on (the table's, a heartbeat subject, a transaction subject, or none);
 * the rest is the message. Parsing must never crash, leak or read past the
 * message; what it accepts must be valid JSON; a hint has an op c or r, a
 * positive id and a subscriber of the length it claims; only an invalid
 * message has a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/debezium.h"
#include "util/json_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool blank(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const subjects[] = {"piper.public.events", "__debezium-heartbeat.piper",
                                           "piper.transaction", NULL};
    if (size == 0)
        return 0;
    const char *subject = subjects[data[0] % 4];
    /* A copy of exactly the message's length, so ASan sees any overread. */
    size_t len = size - 1;
    char *text = malloc(len > 0 ? len : 1);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, len);

    struct debezium_hint hint;
    const char *why = "unset";
    enum debezium_outcome outcome = debezium_parse(subject, text, len, &hint, &why);
    if ((outcome == DEBEZIUM_INVALID) != (why != NULL))
        abort();
    if (outcome != DEBEZIUM_INVALID && !blank(text, len)) {
        enum json_kind kind;
        json_compact(text, len, NULL, &kind);
        if (kind == JSON_KIND_INVALID)
            abort(); /* accepted text that is not JSON */
    }
    if (outcome == DEBEZIUM_HINT) {
        if ((hint.op != 'c' && hint.op != 'r') || hint.id <= 0 || hint.subscriber == NULL ||
            strlen(hint.subscriber) != hint.subscriber_len)
            abort();
    } else if (hint.subscriber != NULL || hint.id != 0) {
        abort();
    }
    debezium_hint_clear(&hint);
    free(text);
    return 0;
}
