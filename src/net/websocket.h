/*
 * websocket: a stream over RFC 6455, after an HTTP/1.1 upgrade.
 *
 * The server speaks, the client only listens: every event is one text
 * message {"id":"<id>","event":"<type>","data":<payload>} (frame.h builds it
 * once per event for every WebSocket stream), heartbeats are pings, and the
 * end of a stream is a close frame whose code says why (1001 going away at
 * shutdown, 1008 when the credential expired, 1013 for a slow consumer).
 *
 * Client frames are parsed by wslay: pongs are taken, pings answered, a
 * close answered and the connection then closed. Anything else closes the
 * stream with the matching code: a data message with 1003 (this endpoint
 * accepts none), a frame longer than the limit with 1009, a protocol
 * violation with 1002. Frames the server writes are framed here and written
 * like SSE ones (straight to the socket when nothing is queued), so an event
 * costs no per-stream copy beyond the socket write.
 */
#ifndef PIPER_WEBSOCKET_H
#define PIPER_WEBSOCKET_H

#include "core/session.h"

struct conn;

#define WEBSOCKET_ACCEPT_LEN 28

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)),
 * NUL-terminated in out (WEBSOCKET_ACCEPT_LEN + 1 bytes). */
void websocket_accept_key(const char *key, char *out);

/* Takes the connection over from HTTP/1.1 (the 101 answer is written);
 * returns the stream's sink, or NULL (the connection is then closing) when
 * out of memory. */
struct session_sink *websocket_start(struct conn *c);

/* Writes the header of an unmasked server frame (FIN set) with the given
 * opcode and payload length into out (at least 10 bytes); returns its
 * length. */
size_t websocket_frame_header(unsigned char *out, unsigned opcode, size_t payload_len);

#endif
