/*
 * Rows of the events table as read by replay and by the confirmer (confirm.h):
 * one select list, one conversion to a frame.
 */
#ifndef PIPER_EVENT_ROW_H
#define PIPER_EVENT_ROW_H

#include <stdint.h>

#include <libpq-fe.h>

#include "core/frame.h"

/* Columns in the order event_row_frame() reads them. */
#define EVENT_ROW_SELECT                                                                           \
    "SELECT id, type, extract(epoch from timestamp)::float8, payload, subscriber FROM events"

/* The same columns for replay, which needs neither the timestamp (replayed
 * rows are not counted in the delivery lag) nor the subscriber (it asked
 * for one): leaving them out saves PostgreSQL a conversion per row. */
#define EVENT_ROW_REPLAY_SELECT "SELECT id, type, NULL::float8, payload FROM events"

enum { EVENT_ROW_ID, EVENT_ROW_TYPE, EVENT_ROW_TIMESTAMP, EVENT_ROW_PAYLOAD, EVENT_ROW_SUBSCRIBER };

/* Builds the frame of row `row` of res. *id receives the row id whenever it
 * is readable, even if the row cannot become a frame (NULL with *err set),
 * so a reader can move past a bad row. */
struct frame *event_row_frame(const PGresult *res, int row, int64_t *id, enum frame_error *err);

/* Bytes of the row's variable-size columns, for sizing replay pages. */
size_t event_row_bytes(const PGresult *res, int row);

#endif
