/*
 * peers: one record per client address, for per-client limits and logs.
 *
 * Every connection holds a reference to the record of its client's address
 * (the PROXY protocol's source when enabled, else the TCP peer's), so the
 * record lives while any connection from that address does. The record
 * counts the address's open streams (SSE and WebSocket, over any
 * transport); the API layer compares that count with MAX_STREAMS_PER_IP.
 * Keyed by address only, not port. Pure bookkeeping, no I/O.
 */
#ifndef PIPER_PEERS_H
#define PIPER_PEERS_H

#include <stddef.h>
#include <sys/socket.h>

struct peers;
struct peer;

struct peers *peers_new(void);
/* Every reference must have been dropped. */
void peers_free(struct peers *all);

/* The record of addr's address, with one more reference; NULL when out of
 * memory or addr is not IPv4 or IPv6. */
struct peer *peer_get(struct peers *all, const struct sockaddr *addr);
void peer_put(struct peers *all, struct peer *p);

/* The address as text ("203.0.113.7", "2001:db8::1"). */
const char *peer_address(const struct peer *p);

size_t peer_streams(const struct peer *p);
void peer_stream_opened(struct peer *p);
void peer_stream_closed(struct peer *p);

/* Distinct addresses with a connection open. */
size_t peers_count(const struct peers *all);

#endif
