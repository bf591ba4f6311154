/*
 * A chained hash table keyed by the address bytes, grown when it averages
 * more than one record per bucket (a failed growth only keeps chains
 * longer).
 */
#include "net/peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct peer {
    struct peer *bucket_next;
    uint64_t hash;
    size_t refs;
    size_t streams;
    int family;
    unsigned char bytes[16];
    char text[INET6_ADDRSTRLEN];
};

struct peers {
    struct peer **buckets;
    size_t bucket_count; /* a power of two */
    size_t count;
};

#define INITIAL_BUCKETS 256

static uint64_t hash_bytes(int family, const unsigned char *b, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037) ^ (uint64_t)family;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

struct peers *peers_new(void)
{
    struct peers *all = calloc(1, sizeof(*all));
    if (all == NULL)
        return NULL;
    all->buckets = calloc(INITIAL_BUCKETS, sizeof(*all->buckets));
    if (all->buckets == NULL) {
        free(all);
        return NULL;
    }
    all->bucket_count = INITIAL_BUCKETS;
    return all;
}

void peers_free(struct peers *all)
{
    if (all == NULL)
        return;
    for (size_t i = 0; i < all->bucket_count; i++) {
        for (struct peer *p = all->buckets[i], *next; p != NULL; p = next) {
            next = p->bucket_next;
            free(p);
        }
    }
    free(all->buckets);
    free(all);
}

static void maybe_grow(struct peers *all)
{
    if (all->count <= all->bucket_count)
        return;
    size_t n = all->bucket_count * 2;
    struct peer **fresh = calloc(n, sizeof(*fresh));
    if (fresh == NULL)
        return;
    for (size_t i = 0; i < all->bucket_count; i++) {
        for (struct peer *p = all->buckets[i], *next; p != NULL; p = next) {
            next = p->bucket_next;
            p->bucket_next = fresh[p->hash & (n - 1)];
            fresh[p->hash & (n - 1)] = p;
        }
    }
    free(all->buckets);
    all->buckets = fresh;
    all->bucket_count = n;
}

struct peer *peer_get(struct peers *all, const struct sockaddr *addr)
{
    const unsigned char *bytes;
    size_t len;
    if (addr->sa_family == AF_INET) {
        bytes = (const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr;
        len = 4;
    } else if (addr->sa_family == AF_INET6) {
        bytes = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
        len = 16;
    } else {
        return NULL;
    }
    uint64_t h = hash_bytes(addr->sa_family, bytes, len);
    struct peer *p = all->buckets[h & (all->bucket_count - 1)];
    for (; p != NULL; p = p->bucket_next) {
        if (p->hash == h && p->family == addr->sa_family && memcmp(p->bytes, bytes, len) == 0) {
            p->refs++;
            return p;
        }
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->hash = h;
    p->refs = 1;
    p->family = addr->sa_family;
    memcpy(p->bytes, bytes, len);
    if (inet_ntop(p->family, p->bytes, p->text, sizeof(p->text)) == NULL)
        strcpy(p->text, "?");
    p->bucket_next = all->buckets[h & (all->bucket_count - 1)];
    all->buckets[h & (all->bucket_count - 1)] = p;
    all->count++;
    maybe_grow(all);
    return p;
}

void peer_put(struct peers *all, struct peer *p)
{
    if (p == NULL || --p->refs > 0)
        return;
    struct peer **link = &all->buckets[p->hash & (all->bucket_count - 1)];
    while (*link != p)
        link = &(*link)->bucket_next;
    *link = p->bucket_next;
    all->count--;
    free(p);
}

const char *peer_address(const struct peer *p)
{
    return p->text;
}

size_t peer_streams(const struct peer *p)
{
    return p->streams;
}

void peer_stream_opened(struct peer *p)
{
    p->streams++;
}

void peer_stream_closed(struct peer *p)
{
    p->streams--;
}

size_t peers_count(const struct peers *all)
{
    return all->count;
}
