#include "core/event_row.h"

#include <stdlib.h>

#include "ingest/notification.h"

struct frame *event_row_frame(const PGresult *res, int row, int64_t *id, enum frame_error *err)
{
    const char *id_text = PQgetvalue(res, row, EVENT_ROW_ID);
    *id = 0;
    if (!notification_parse_id(id_text, (size_t)PQgetlength(res, row, EVENT_ROW_ID), id)) {
        *err = FRAME_BAD_ID;
        return NULL;
    }
    double timestamp = PQgetisnull(res, row, EVENT_ROW_TIMESTAMP)
                           ? 0.0
                           : strtod(PQgetvalue(res, row, EVENT_ROW_TIMESTAMP), NULL);
    return frame_new_event(*id, PQgetvalue(res, row, EVENT_ROW_TYPE),
                           (size_t)PQgetlength(res, row, EVENT_ROW_TYPE),
                           PQgetvalue(res, row, EVENT_ROW_PAYLOAD),
                           (size_t)PQgetlength(res, row, EVENT_ROW_PAYLOAD), timestamp, err);
}

size_t event_row_bytes(const PGresult *res, int row)
{
    return (size_t)PQgetlength(res, row, EVENT_ROW_TYPE) +
           (size_t)PQgetlength(res, row, EVENT_ROW_PAYLOAD) + 32;
}
