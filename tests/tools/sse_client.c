/*
 * sse-client: the project's own SSE client, for integration tests and the
 * benchmark.
 *
 * One process, one libevent loop, many sessions. A session is one logical
 * subscriber: it opens a socket (bufferevent), sends one GET, feeds every
 * byte it reads to its own sse_stream parser, and checks what comes out:
 * a well-formed response, and event ids strictly increasing over the whole
 * run, reconnects included (unless --foreign-ids: another server's ids, for
 * the benchmark's side-by-side runs, are taken as text). It may reconnect
 * (end of stream, lost connection, chaos timer) with Last-Event-ID, which is
 * how the server's exactly-once, in-order delivery is checked end to end.
 *
 * Shape:
 * - A declarative option table drives parsing and --help.
 * - A session has an explicit state, changed only by session_set_state(),
 *   which refuses impossible transitions; one timer per session (never
 *   persistent) is the reconnect delay while WAITING and the chaos timer
 *   while OPEN.
 * - Parser callbacks never free anything: they record a verdict and return
 *   false to stop the parser; the read callback acts on the parser's result
 *   once it has returned. A connection is freed in one place,
 *   session_close().
 * - The run ends through client_exit(), which records the exit code (the
 *   first one wins) and breaks the loop; main() then prints the summary and
 *   frees everything, so a run under ASan ends without leaks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "latency.h"
#include "sse_stream.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum exit_code {
    EXIT_DONE = 0,
    EXIT_NOT_DONE = 1, /* timeout, stream ended before done, connection failure */
    EXIT_STATUS = 2,   /* unexpected HTTP status */
    EXIT_PROTOCOL = 3, /* malformed response */
    EXIT_ORDER = 4,    /* ids not strictly increasing */
    EXIT_USAGE = 64,
};

#define DEFAULT_RETRY_MS 1000
#define DEFAULT_MAX_LINE (4 * 1024 * 1024)
#define READ_BYTES_PER_CALL (256 * 1024)

/* ---- options ------------------------------------------------------------ */

struct options {
    const char *host;
    const char *port;
    const char *path;
    char *consumer_storage; /* owned: the --consumer(s) text, split in place */
    const char **consumers; /* owned array into consumer_storage */
    size_t consumer_count;
    const char **headers; /* owned array of argv strings */
    size_t header_count;
    unsigned long sessions;
    const char *last_event_id;
    bool http10;
    bool has_source_ips;
    uint32_t source_first, source_last; /* host byte order */
    const char *out_dir;
    bool print;
    unsigned long long count; /* 0: no --count */
    bool has_until_id;
    int64_t until_id;
    double timeout_s;  /* 0: none */
    double duration_s; /* 0: none */
    bool reconnect;
    long retry_ms; /* -1: the server's retry: value */
    bool chaos;
    long chaos_min_ms, chaos_max_ms;
    bool has_seed;
    uint64_t seed;
    int expect_status; /* 0: none */
    bool print_headers;
    bool quiet;
    bool close_when_done;
    size_t max_line;
    bool latency;             /* record now - payload "t" per event */
    const char *latency_file; /* where to write the histogram at exit */
    bool stall;               /* never read: a client that stopped reading */
    bool foreign_ids;         /* another server's ids (Nchan's time:tag): not parsed or ordered */
};

/* An option takes a value (metavar and set) or is a flag (the bool at
 * flag_offset in struct options becomes true). */
struct option_spec {
    const char *name;
    const char *metavar;
    bool (*set)(struct options *o, const char *value);
    size_t flag_offset;
    const char *help;
};

#define FLAG(name, field, help)                                                                    \
    {                                                                                              \
        name, NULL, NULL, offsetof(struct options, field), help                                    \
    }

static bool parse_ulong(const char *v, unsigned long long min, unsigned long long max,
                        unsigned long long *out)
{
    char *end = NULL;
    if (v[0] < '0' || v[0] > '9')
        return false;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < min || n > max)
        return false;
    *out = n;
    return true;
}

static bool parse_seconds(const char *v, double *out)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(d > 0 && d < 1e9))
        return false;
    *out = d;
    return true;
}

/* A decimal int64: optional '-', digits only. */
static bool parse_int64(const char *v, int64_t *out)
{
    const char *p = v + (v[0] == '-');
    if (*p == '\0' || strlen(p) > 19)
        return false;
    for (const char *q = p; *q != '\0'; q++)
        if (*q < '0' || *q > '9')
            return false;
    errno = 0;
    long long n = strtoll(v, NULL, 10);
    if (errno != 0)
        return false;
    *out = n;
    return true;
}

static bool header_safe(const char *v)
{
    return strpbrk(v, "\r\n") == NULL;
}

static bool set_host(struct options *o, const char *v)
{
    o->host = v;
    return v[0] != '\0';
}

static bool set_port(struct options *o, const char *v)
{
    unsigned long long n;
    o->port = v;
    return parse_ulong(v, 1, 65535, &n);
}

static bool set_path(struct options *o, const char *v)
{
    o->path = v;
    return v[0] == '/' && strpbrk(v, " \r\n") == NULL;
}

/* --consumer ID is a one-element --consumers list. */
static bool set_consumer_list(struct options *o, const char *v, bool split)
{
    free(o->consumer_storage);
    free(o->consumers);
    o->consumer_storage = strdup(v);
    o->consumers = calloc(strlen(v) + 1, sizeof(*o->consumers));
    o->consumer_count = 0;
    if (o->consumer_storage == NULL || o->consumers == NULL)
        return false;
    char *item = o->consumer_storage;
    for (;;) {
        char *comma = split ? strchr(item, ',') : NULL;
        if (comma != NULL)
            *comma = '\0';
        if (item[0] == '\0' || !header_safe(item))
            return false;
        o->consumers[o->consumer_count++] = item;
        if (comma == NULL)
            return true;
        item = comma + 1;
    }
}

static bool set_consumer(struct options *o, const char *v)
{
    return set_consumer_list(o, v, false);
}

static bool set_consumers(struct options *o, const char *v)
{
    return set_consumer_list(o, v, true);
}

static bool set_header(struct options *o, const char *v)
{
    const char *colon = strchr(v, ':');
    if (colon == NULL || colon == v || !header_safe(v))
        return false;
    o->headers[o->header_count++] = v; /* sized for argc at start */
    return true;
}

static bool set_sessions(struct options *o, const char *v)
{
    unsigned long long n;
    if (!parse_ulong(v, 1, 1000000, &n))
        return false;
    o->sessions = (unsigned long)n;
    return true;
}

static bool set_last_event_id(struct options *o, const char *v)
{
    o->last_event_id = v; /* any value, so error paths can be tested */
    return header_safe(v);
}

static bool parse_ipv4(const char *v, size_t len, uint32_t *out)
{
    char text[INET_ADDRSTRLEN];
    struct in_addr a;
    if (len >= sizeof(text))
        return false;
    memcpy(text, v, len);
    text[len] = '\0';
    if (inet_pton(AF_INET, text, &a) != 1)
        return false;
    *out = ntohl(a.s_addr);
    return true;
}

static bool set_source_ips(struct options *o, const char *v)
{
    const char *dash = strchr(v, '-');
    size_t first_len = dash != NULL ? (size_t)(dash - v) : strlen(v);
    o->has_source_ips = true;
    if (!parse_ipv4(v, first_len, &o->source_first))
        return false;
    o->source_last = o->source_first;
    if (dash != NULL && !parse_ipv4(dash + 1, strlen(dash + 1), &o->source_last))
        return false;
    return o->source_first <= o->source_last;
}

static bool set_out(struct options *o, const char *v)
{
    o->out_dir = v;
    return v[0] != '\0';
}

static bool set_count(struct options *o, const char *v)
{
    return parse_ulong(v, 1, ULLONG_MAX, &o->count);
}

static bool set_until_id(struct options *o, const char *v)
{
    o->has_until_id = true;
    return parse_int64(v, &o->until_id);
}

static bool set_timeout(struct options *o, const char *v)
{
    return parse_seconds(v, &o->timeout_s);
}

static bool set_duration(struct options *o, const char *v)
{
    return parse_seconds(v, &o->duration_s);
}

static bool set_retry_ms(struct options *o, const char *v)
{
    unsigned long long n;
    if (!parse_ulong(v, 0, 3600000, &n))
        return false;
    o->retry_ms = (long)n;
    return true;
}

static bool set_chaos(struct options *o, const char *v)
{
    unsigned long long lo, hi;
    char first[24];
    const char *colon = strchr(v, ':');
    if (colon == NULL || (size_t)(colon - v) >= sizeof(first))
        return false;
    memcpy(first, v, (size_t)(colon - v));
    first[colon - v] = '\0';
    if (!parse_ulong(first, 0, 86400000, &lo) || !parse_ulong(colon + 1, lo, 86400000, &hi))
        return false;
    o->chaos = true;
    o->reconnect = true;
    o->chaos_min_ms = (long)lo;
    o->chaos_max_ms = (long)hi;
    return true;
}

static bool set_seed(struct options *o, const char *v)
{
    unsigned long long n = 0;
    o->has_seed = parse_ulong(v, 0, ULLONG_MAX, &n);
    o->seed = n;
    return o->has_seed;
}

static bool set_expect_status(struct options *o, const char *v)
{
    unsigned long long n;
    if (!parse_ulong(v, 200, 999, &n))
        return false;
    o->expect_status = (int)n;
    return true;
}

static bool set_max_line(struct options *o, const char *v)
{
    unsigned long long n;
    if (!parse_ulong(v, 64, 1ull << 32, &n))
        return false;
    o->max_line = (size_t)n;
    return true;
}

static bool set_latency_file(struct options *o, const char *v)
{
    if (*v == '\0')
        return false;
    o->latency = true;
    o->latency_file = v;
    return true;
}

static const struct option_spec option_specs[] = {
    {"host", "H", set_host, 0, "server address or name (default 127.0.0.1)"},
    {"port", "P", set_port, 0, "server port (default 4000)"},
    {"path", "PATH", set_path, 0, "request path (default /events)"},
    {"consumer", "ID", set_consumer, 0, "send X-Consumer-Id: ID"},
    {"consumers", "A,B,C", set_consumers, 0, "session i uses consumer i mod count"},
    {"header", "'NAME: VALUE'", set_header, 0, "send this header too (repeatable)"},
    {"sessions", "N", set_sessions, 0, "concurrent sessions (default 1)"},
    {"last-event-id", "ID", set_last_event_id, 0,
     "initial Last-Event-ID (wins over --header Last-Event-ID)"},
    FLAG("http10", http10, "send HTTP/1.0 requests (the reply must not be chunked)"),
    {"source-ips", "A[-B]", set_source_ips, 0,
     "bind each new connection to the next IPv4 address of this range"},
    {"out", "DIR", set_out, 0, "write session i's events to DIR/i.events"},
    FLAG("print", print, "print events to stdout"),
    {"count", "N", set_count, 0, "done when every session has received N events"},
    {"until-id", "N", set_until_id, 0, "done when every session has received an id >= N"},
    {"timeout", "SECONDS", set_timeout, 0, "give up (exit 1) if not done by then"},
    {"duration", "SECONDS", set_duration, 0, "stop (exit 0) after this long"},
    FLAG("reconnect", reconnect,
         "reconnect after the end of a stream or a connection error, with Last-Event-ID"),
    {"retry-ms", "MS", set_retry_ms, 0,
     "reconnect delay (default: the server's retry: value, else 1000)"},
    {"chaos", "MIN:MAX", set_chaos, 0,
     "disconnect MIN..MAX ms after each connect, then reconnect (implies --reconnect)"},
    {"seed", "N", set_seed, 0, "seed for --chaos (default: time and pid, printed)"},
    {"expect-status", "CODE", set_expect_status, 0,
     "exit 0 iff every response has this status; print bodies to stdout"},
    FLAG("print-headers", print_headers, "print response heads to stderr"),
    FLAG("quiet", quiet, "no summary, no notes (errors are still printed)"),
    FLAG("close-when-done", close_when_done,
         "close a session's connection as soon as it is done (--count, --until-id)"),
    {"max-line", "BYTES", set_max_line, 0, "longest SSE line and event accepted (default 4 MiB)"},
    FLAG("latency", latency,
         "latency of each event from the \"t\" (Unix microseconds) in its data; printed at exit"),
    {"latency-file", "PATH", set_latency_file, 0,
     "also write the latency histogram there at exit, to merge several clients' (implies "
     "--latency)"},
    FLAG("stall", stall, "send the request, then never read (a stuck client)"),
    FLAG("foreign-ids", foreign_ids,
         "ids are another server's (say Nchan's time:tag): accepted as text, order not checked"),
};

#define OPTION_COUNT (sizeof(option_specs) / sizeof(option_specs[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: sse-client [options]\n\n");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct option_spec *spec = &option_specs[i];
        char left[48];
        snprintf(left, sizeof(left), "--%s%s%s", spec->name, spec->metavar != NULL ? " " : "",
                 spec->metavar != NULL ? spec->metavar : "");
        fprintf(f, "  %-30s %s\n", left, spec->help);
    }
    fprintf(f, "\nEvent lines (--out, --print): <id> TAB <event> TAB <data>, with tab, newline,\n"
               "CR, backslash and NUL escaped as \\t \\n \\r \\\\ \\0.\n"
               "Summary (stderr, at exit): session <i> consumer=<c> events=<n> last_id=<id>\n"
               "reconnects=<r> (last_id: the Last-Event-ID a reconnect would send, or -;\n"
               "reconnects: connections established after the first).\n"
               "Exit status: 0 done, duration over, all streams ended, or signal; 1 timeout\n"
               "or a stream ended or failed before done; 2 unexpected HTTP status;\n"
               "3 protocol error; 4 order violation; 64 usage.\n");
}

static void options_init(struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = "4000";
    o->path = "/events";
    o->sessions = 1;
    o->retry_ms = -1;
    o->max_line = DEFAULT_MAX_LINE;
}

static void options_free(struct options *o)
{
    free(o->consumer_storage);
    free(o->consumers);
    free(o->headers);
}

static const struct option_spec *option_find(const char *name, size_t len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (strlen(option_specs[i].name) == len && memcmp(option_specs[i].name, name, len) == 0)
            return &option_specs[i];
    return NULL;
}

/* Returns -1 to go on, or the exit status (0 after --help). */
static int options_parse(struct options *o, int argc, char **argv)
{
    o->headers = calloc((size_t)argc + 1, sizeof(*o->headers));
    if (o->headers == NULL)
        return EXIT_NOT_DONE;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return EXIT_DONE;
        }
        const struct option_spec *spec = NULL;
        const char *eq = NULL;
        if (strncmp(arg, "--", 2) == 0) {
            eq = strchr(arg + 2, '=');
            spec = option_find(arg + 2, eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2));
        }
        if (spec == NULL) {
            fprintf(stderr, "sse-client: unknown option '%s' (see --help)\n", arg);
            return EXIT_USAGE;
        }
        const char *value = eq != NULL ? eq + 1 : NULL;
        if (spec->metavar != NULL && value == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sse-client: --%s needs a value (%s)\n", spec->name, spec->metavar);
                return EXIT_USAGE;
            }
            value = argv[++i];
        }
        if (spec->set == NULL && value == NULL) {
            *(bool *)((char *)o + spec->flag_offset) = true;
            continue;
        }
        if (spec->set == NULL || !spec->set(o, value)) {
            fprintf(stderr, "sse-client: invalid value for --%s: '%s'\n", spec->name,
                    value != NULL ? value : "");
            return EXIT_USAGE;
        }
    }
    if (o->expect_status != 0 && o->reconnect) {
        fprintf(stderr, "sse-client: --expect-status does not go with --reconnect or --chaos\n");
        return EXIT_USAGE;
    }
    /* Both need the last id as a number. */
    if (o->foreign_ids && (o->reconnect || o->has_until_id)) {
        fprintf(stderr,
                "sse-client: --foreign-ids does not go with --reconnect, --chaos or --until-id\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* ---- client and sessions ------------------------------------------------ */

enum session_state {
    SESSION_IDLE,       /* not started */
    SESSION_CONNECTING, /* socket connecting, request queued */
    SESSION_OPEN,       /* connected: request sent, response being read */
    SESSION_WAITING,    /* disconnected; the timer reconnects */
    SESSION_FINISHED,   /* no more connections */
};

static const char *const state_names[] = {"idle", "connecting", "open", "waiting", "finished"};

/* Why a connection ends. */
enum session_end {
    END_STREAM,  /* the response ended cleanly */
    END_LOST,    /* connection error or truncated response */
    END_REFUSED, /* could not connect */
    END_CHAOS,   /* our own chaos timer */
    END_FINISH,  /* the session is over (--expect-status) */
};

struct client;

struct session {
    struct client *client;
    size_t index;
    const char *consumer; /* NULL: no X-Consumer-Id */
    enum session_state state;
    struct bufferevent *bev; /* owned while CONNECTING or OPEN */
    struct event *timer;     /* owned; reconnect while WAITING, chaos while OPEN */
    struct sse_stream parser;
    FILE *out; /* owned; NULL without --out */
    unsigned long long events;
    unsigned long connections;
    bool has_last_id; /* an event was received: last_id is its id */
    int64_t last_id;
    long long server_retry_ms; /* -1 until the server sends retry: */
    bool reached_until_id;
    bool done;
    bool failed;
    bool refused_noted;
    bool finish_response; /* close without reconnecting once the parser stops */
    int status;           /* of the current response, 0 before its head */
};

struct client {
    struct options opt;
    struct event_base *base;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host_header[300];
    struct session *sessions; /* owned array */
    size_t session_count;
    struct event *timeout_ev, *duration_ev, *sigint_ev, *sigterm_ev;
    uint64_t next_source;
    uint64_t rng;
    size_t done_count;
    size_t finished_count;
    size_t failed_count;
    struct latency *latency; /* owned; NULL without --latency */
    uint64_t events_without_stamp;
    bool exiting;
    int exit_code;
};

static void client_exit(struct client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends the run: the first call's code wins; fmt (if any) is printed. */
static void client_exit(struct client *c, int code, const char *fmt, ...)
{
    if (c->exiting)
        return;
    c->exiting = true;
    c->exit_code = code;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    event_base_loopbreak(c->base);
}

static bool client_has_criteria(const struct client *c)
{
    return c->opt.count > 0 || c->opt.has_until_id || c->opt.expect_status != 0;
}

static void note(const struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A line on stderr about s, unless --quiet. */
static void note(const struct session *s, const char *fmt, ...)
{
    va_list ap;
    if (s->client->opt.quiet)
        return;
    fprintf(stderr, "session %zu: ", s->index);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void session_set_state(struct session *s, enum session_state to)
{
    static const unsigned allowed[] = {
        [SESSION_IDLE] = 1u << SESSION_CONNECTING,
        [SESSION_CONNECTING] = 1u << SESSION_OPEN | 1u << SESSION_WAITING | 1u << SESSION_FINISHED,
        [SESSION_OPEN] = 1u << SESSION_WAITING | 1u << SESSION_FINISHED,
        [SESSION_WAITING] = 1u << SESSION_CONNECTING | 1u << SESSION_FINISHED,
        [SESSION_FINISHED] = 0,
    };
    if ((allowed[s->state] & (1u << to)) == 0) {
        fprintf(stderr, "session %zu: impossible transition %s -> %s\n", s->index,
                state_names[s->state], state_names[to]);
        abort();
    }
    s->state = to;
}

static void arm_timer(struct session *s, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(s->timer, &tv);
}

static long session_retry_ms(const struct session *s)
{
    if (s->client->opt.retry_ms >= 0)
        return s->client->opt.retry_ms;
    if (s->server_retry_ms >= 0)
        return s->server_retry_ms < 3600000 ? (long)s->server_retry_ms : 3600000;
    return DEFAULT_RETRY_MS;
}

static void session_mark_done(struct session *s)
{
    struct client *c = s->client;
    if (s->done)
        return;
    s->done = true;
    if (++c->done_count == c->session_count) {
        client_exit(c, EXIT_DONE, NULL);
        return;
    }
    if (c->opt.close_when_done)
        s->finish_response = true; /* closed once the parser returns */
}

static void session_check_done(struct session *s)
{
    const struct options *o = &s->client->opt;
    if (o->count == 0 && !o->has_until_id)
        return;
    if ((o->count == 0 || s->events >= o->count) && (!o->has_until_id || s->reached_until_id))
        session_mark_done(s);
}

/* The session will not connect again. */
static void session_finished(struct session *s, bool failed)
{
    struct client *c = s->client;
    session_set_state(s, SESSION_FINISHED);
    c->finished_count++;
    if (failed) {
        s->failed = true;
        c->failed_count++;
    }
    if (client_has_criteria(c) && !s->done)
        client_exit(c, EXIT_NOT_DONE, "session %zu: stream ended before the session was done",
                    s->index);
    else if (c->finished_count == c->session_count)
        client_exit(c, c->failed_count > 0 ? EXIT_NOT_DONE : EXIT_DONE, NULL);
}

/* Frees the connection (the one place that does) and decides what next:
 * reconnect later, or finish. detail says why a connection failed. */
static void session_close(struct session *s, enum session_end why, const char *detail)
{
    struct client *c = s->client;
    if (s->bev != NULL) {
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    event_del(s->timer);
    if (c->exiting)
        return;
    bool failure = why == END_LOST || why == END_REFUSED;
    if (c->opt.reconnect && why != END_FINISH) {
        session_set_state(s, SESSION_WAITING);
        long delay = session_retry_ms(s);
        if (why == END_LOST)
            note(s, "connection lost (%s); reconnecting in %ld ms", detail, delay);
        if (why == END_REFUSED && !s->refused_noted) {
            s->refused_noted = true;
            note(s, "cannot connect (%s); retrying every %ld ms", detail, delay);
        }
        arm_timer(s, delay);
        return;
    }
    if (failure)
        fprintf(stderr, "session %zu: %s: %s\n", s->index,
                why == END_REFUSED ? "cannot connect" : "connection lost", detail);
    session_finished(s, failure);
}

/* ---- parser callbacks (they never free; false stops the parser) ---------- */

static void print_head(const struct session *s, const struct sse_response *resp)
{
    const char *p = resp->head;
    const char *end = p + resp->head_len;
    bool prefix = s->client->session_count > 1;
    while (p < end) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL && eol < end ? (size_t)(eol - p) : (size_t)(end - p);
        if (prefix)
            fprintf(stderr, "[%zu] ", s->index);
        fprintf(stderr, "%.*s\n", (int)len, p);
        p += len + 2;
    }
    fputc('\n', stderr);
}

static bool on_headers(void *arg, const struct sse_response *resp)
{
    struct session *s = arg;
    struct client *c = s->client;
    int expected = c->opt.expect_status != 0 ? c->opt.expect_status : 200;

    s->status = resp->status;
    if (c->opt.print_headers)
        print_head(s, resp);
    if (resp->status != expected) {
        if (!resp->event_stream)
            return true; /* the body is printed at its end, then the run fails */
        client_exit(c, EXIT_STATUS, "session %zu: unexpected status %d (expected %d)", s->index,
                    resp->status, expected);
        return false;
    }
    if (c->opt.expect_status != 0) {
        if (resp->event_stream) { /* --expect-status 200: the stream is endless */
            s->finish_response = true;
            session_mark_done(s);
            return false;
        }
        return true;
    }
    if (!resp->event_stream) {
        client_exit(c, EXIT_PROTOCOL,
                    "session %zu: protocol error: status 200 with Content-Type '%s', not "
                    "text/event-stream",
                    s->index, resp->content_type);
        return false;
    }
    return true;
}

static bool on_body_end(void *arg, const char *body, size_t len, bool truncated)
{
    struct session *s = arg;
    struct client *c = s->client;
    int expected = c->opt.expect_status != 0 ? c->opt.expect_status : 200;

    if (body == NULL)
        return true; /* an event stream ended: the read callback reconnects or finishes */
    fwrite(body, 1, len, stdout);
    fflush(stdout);
    if (truncated)
        note(s, "body truncated to %zu bytes", len);
    if (s->status != expected) {
        client_exit(c, EXIT_STATUS, "session %zu: unexpected status %d (expected %d)", s->index,
                    s->status, expected);
        return false;
    }
    s->finish_response = true;
    session_mark_done(s);
    return true;
}

/* Writes p as one field of an event line. */
static void put_escaped(FILE *f, const char *p, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc;
        switch (p[i]) {
        case '\t':
            esc = "\\t";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\0':
            esc = "\\0";
            break;
        default:
            continue;
        }
        fwrite(p + start, 1, i - start, f);
        fputs(esc, f);
        start = i + 1;
    }
    fwrite(p + start, 1, n - start, f);
}

static bool write_event_line(FILE *f, const char *id, const char *type, const char *data,
                             size_t len)
{
    put_escaped(f, id, strlen(id));
    fputc('\t', f);
    put_escaped(f, type, strlen(type));
    fputc('\t', f);
    put_escaped(f, data, len);
    fputc('\n', f);
    return fflush(f) == 0 && !ferror(f);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void record_latency(struct client *c, const char *data, size_t len)
{
    int64_t stamp;
    if (latency_stamp(data, len, &stamp))
        latency_record(c->latency, now_us() - stamp);
    else
        c->events_without_stamp++;
}

/* Event-piper's ids are decimal int64s, strictly increasing per session. */
static bool session_check_id(struct session *s, const char *id)
{
    struct client *c = s->client;
    int64_t v;

    if (!parse_int64(id, &v)) {
        client_exit(c, EXIT_PROTOCOL,
                    "session %zu: protocol error: event id '%.40s' is not a decimal int64",
                    s->index, id);
        return false;
    }
    if (s->has_last_id && v <= s->last_id) {
        client_exit(c, EXIT_ORDER, "session %zu: order violation: got %" PRId64 " after %" PRId64,
                    s->index, v, s->last_id);
        return false;
    }
    s->has_last_id = true;
    s->last_id = v;
    if (c->opt.has_until_id && v >= c->opt.until_id)
        s->reached_until_id = true;
    return true;
}

static bool on_event(void *arg, const char *id, const char *type, const char *data, size_t len)
{
    struct session *s = arg;
    struct client *c = s->client;

    /* An event without an id of its own is a signal (history-gone): it is
     * written with an empty id and neither checked nor counted. */
    bool signal = !sse_stream_event_has_id(&s->parser);
    if (signal)
        id = "";
    else if (!c->opt.foreign_ids && !session_check_id(s, id))
        return false;
    if (!signal)
        s->events++;
    if (c->latency != NULL)
        record_latency(c, data, len);
    if (s->out != NULL && !write_event_line(s->out, id, type, data, len)) {
        client_exit(c, EXIT_NOT_DONE, "session %zu: cannot write events: %s", s->index,
                    strerror(errno));
        return false;
    }
    if (c->opt.print && !write_event_line(stdout, id, type, data, len)) {
        client_exit(c, EXIT_NOT_DONE, "session %zu: cannot print events: %s", s->index,
                    strerror(errno));
        return false;
    }
    if (!signal)
        session_check_done(s);
    /* Stopping the parser ends the response; finish_response makes it final. */
    return !c->exiting && !(c->opt.close_when_done && s->done);
}

static bool on_retry(void *arg, uint64_t ms)
{
    struct session *s = arg;
    s->server_retry_ms = ms < (uint64_t)LLONG_MAX ? (long long)ms : LLONG_MAX;
    return true;
}

static const struct sse_callbacks session_callbacks = {
    .on_headers = on_headers,
    .on_event = on_event,
    .on_retry = on_retry,
    .on_body_end = on_body_end,
};

/* ---- connections -------------------------------------------------------- */

/* Acts on what the parser returned, after it has returned. */
static void session_handle(struct session *s, enum sse_result r)
{
    struct client *c = s->client;
    if (c->exiting)
        return;
    switch (r) {
    case SSE_MORE:
        return;
    case SSE_END:
    case SSE_STOPPED:
        session_close(s, s->finish_response ? END_FINISH : END_STREAM, NULL);
        return;
    case SSE_ERROR:
        client_exit(c, EXIT_PROTOCOL, "session %zu: protocol error: %s", s->index,
                    sse_stream_error(&s->parser));
        return;
    case SSE_TRUNCATED:
        session_close(s, END_LOST, sse_stream_error(&s->parser));
        return;
    }
}

/* Feeds all buffered input to the parser, stopping at its first verdict.
 * Input left after the end of the response is fed too, so the parser
 * reports it as an error. */
static enum sse_result session_feed_input(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    enum sse_result r = SSE_MORE;
    while ((r == SSE_MORE || r == SSE_END) && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        r = sse_stream_feed(&s->parser, v.iov_base, v.iov_len);
        evbuffer_drain(in, v.iov_len);
    }
    return r;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    (void)bev;
    session_handle(s, session_feed_input(s));
}

static void session_connected(struct session *s)
{
    const struct options *o = &s->client->opt;
    session_set_state(s, SESSION_OPEN);
    s->connections++;
    if (o->stall)
        bufferevent_disable(s->bev, EV_READ);
    if (o->chaos) {
        uint64_t span = (uint64_t)(o->chaos_max_ms - o->chaos_min_ms) + 1;
        arm_timer(s, o->chaos_min_ms + (long)(rng_next(&s->client->rng) % span));
    }
}

static void on_socket_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    (void)bev;

    if (what & BEV_EVENT_CONNECTED) {
        session_connected(s);
        return;
    }
    if (s->state == SESSION_CONNECTING) {
        session_close(s, END_REFUSED, evutil_socket_error_to_string(err));
        return;
    }
    enum sse_result r = session_feed_input(s);
    if (r == SSE_MORE && (what & BEV_EVENT_EOF))
        r = sse_stream_finish(&s->parser);
    if (r == SSE_MORE) { /* a socket error in the middle of the response */
        char why[160];
        snprintf(why, sizeof(why), "%s after %llu events", evutil_socket_error_to_string(err),
                 s->events);
        session_close(s, END_LOST, why);
        return;
    }
    session_handle(s, r);
}

static void write_request(struct session *s)
{
    const struct client *c = s->client;
    const struct options *o = &c->opt;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    bool own_last_id = s->has_last_id || o->last_event_id != NULL;

    evbuffer_add_printf(out,
                        "GET %s HTTP/1.%d\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                        "Cache-Control: no-cache\r\n",
                        o->path, o->http10 ? 0 : 1, c->host_header);
    if (s->consumer != NULL)
        evbuffer_add_printf(out, "X-Consumer-Id: %s\r\n", s->consumer);
    if (s->has_last_id)
        evbuffer_add_printf(out, "Last-Event-ID: %" PRId64 "\r\n", s->last_id);
    else if (o->last_event_id != NULL)
        evbuffer_add_printf(out, "Last-Event-ID: %s\r\n", o->last_event_id);
    for (size_t i = 0; i < o->header_count; i++) {
        const char *h = o->headers[i];
        if (own_last_id && strncasecmp(h, "last-event-id:", 14) == 0)
            continue;
        evbuffer_add_printf(out, "%s\r\n", h);
    }
    evbuffer_add(out, "\r\n", 2);
}

/* A non-blocking socket for the next connection, bound to the next
 * --source-ips address if any; -1 with *err set on failure. */
static evutil_socket_t new_socket(struct client *c, int *err)
{
    int one = 1;
    evutil_socket_t fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    /* Our closes leave local ports in TIME_WAIT; with SO_REUSEADDR they do
     * not stop a server (the next test's) from listening on such a port. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!c->opt.has_source_ips)
        return fd;
    uint64_t span = (uint64_t)c->opt.source_last - c->opt.source_first + 1;
    uint32_t ip = c->opt.source_first + (uint32_t)(c->next_source++ % span);
    struct sockaddr_in sin;
    /* Leave the port choice to connect(), so ports are only unique per
     * destination and one address can carry more than ~28k connections. */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(ip);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

static void session_connect(struct session *s)
{
    struct client *c = s->client;
    evutil_socket_t fd;
    int err = 0;

    session_set_state(s, SESSION_CONNECTING);
    sse_stream_reset(&s->parser);
    s->status = 0;
    s->finish_response = false;
    if ((fd = new_socket(c, &err)) < 0) {
        session_close(s, END_REFUSED, strerror(err));
        return;
    }
    s->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL) {
        close(fd);
        session_close(s, END_REFUSED, "cannot create a bufferevent");
        return;
    }
    write_request(s);
    /* Callbacks are set after connect: an immediate failure is handled here,
     * not from inside bufferevent_socket_connect(). */
    if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&c->addr, (int)c->addr_len) != 0) {
        session_close(s, END_REFUSED, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return;
    }
    bufferevent_setcb(s->bev, on_read, NULL, on_socket_event, s);
    bufferevent_set_max_single_read(s->bev, READ_BYTES_PER_CALL);
    bufferevent_enable(s->bev, EV_READ);
}

static void on_session_timer(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    (void)fd;
    (void)what;
    if (s->state == SESSION_WAITING)
        session_connect(s);
    else if (s->state == SESSION_OPEN)
        session_close(s, END_CHAOS, NULL); /* chaos */
}

/* ---- run ---------------------------------------------------------------- */

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    client_exit(c, EXIT_NOT_DONE, "timeout after %gs: %zu of %zu sessions done", c->opt.timeout_s,
                c->done_count, c->session_count);
}

static void on_duration(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_exit(arg, EXIT_DONE, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    client_exit(arg, EXIT_DONE, NULL);
}

static bool resolve(struct client *c)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = c->opt.has_source_ips ? AF_INET : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(c->opt.host, c->opt.port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "sse-client: cannot resolve %s: %s\n", c->opt.host, gai_strerror(rc));
        return false;
    }
    memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
    c->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(c->host_header, sizeof(c->host_header),
             strchr(c->opt.host, ':') != NULL ? "[%s]:%s" : "%s:%s", c->opt.host, c->opt.port);
    return true;
}

static void raise_fd_limit(const struct client *c)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t need = (rlim_t)c->opt.sessions * (c->opt.out_dir != NULL ? 2 : 1) + 32;
    if (need > rl.rlim_cur && !c->opt.quiet)
        fprintf(stderr,
                "sse-client: note: %lu sessions may need %llu descriptors; the limit is %llu\n",
                c->opt.sessions, (unsigned long long)need, (unsigned long long)rl.rlim_cur);
}

static bool open_out_file(struct session *s)
{
    char path[4096];
    const char *dir = s->client->opt.out_dir;
    snprintf(path, sizeof(path), "%s/%zu.events", dir, s->index);
    s->out = fopen(path, "w");
    if (s->out == NULL) {
        fprintf(stderr, "sse-client: cannot create %s: %s\n", path, strerror(errno));
        return false;
    }
    return true;
}

static bool sessions_create(struct client *c)
{
    const struct options *o = &c->opt;
    struct sse_limits limits;

    sse_limits_default(&limits);
    limits.max_line_bytes = o->max_line;
    limits.max_event_bytes = o->max_line;
    limits.request_http10 = o->http10;
    c->session_count = o->sessions;
    c->sessions = calloc(c->session_count, sizeof(*c->sessions));
    if (c->sessions == NULL)
        return false;
    for (size_t i = 0; i < c->session_count; i++) {
        struct session *s = &c->sessions[i];
        s->client = c;
        s->index = i;
        s->consumer = o->consumer_count > 0 ? o->consumers[i % o->consumer_count] : NULL;
        s->server_retry_ms = -1;
        sse_stream_init(&s->parser, &limits, &session_callbacks, s);
        s->timer = evtimer_new(c->base, on_session_timer, s);
        if (s->timer == NULL || (o->out_dir != NULL && !open_out_file(s)))
            return false;
    }
    return true;
}

static struct event *add_timer(struct client *c, double seconds, event_callback_fn fn)
{
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    struct event *ev = evtimer_new(c->base, fn, c);
    if (ev != NULL)
        event_add(ev, &tv);
    return ev;
}

static bool client_setup(struct client *c)
{
    const struct options *o = &c->opt;
    c->rng = o->has_seed ? o->seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (o->chaos && !o->has_seed && !o->quiet)
        fprintf(stderr, "sse-client: chaos seed=%" PRIu64 "\n", c->rng);
    if (!resolve(c))
        return false;
    if (o->out_dir != NULL && mkdir(o->out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "sse-client: cannot create %s: %s\n", o->out_dir, strerror(errno));
        return false;
    }
    if (o->latency && (c->latency = latency_new()) == NULL)
        return false;
    c->base = event_base_new();
    if (c->base == NULL || !sessions_create(c))
        return false;
    c->sigint_ev = evsignal_new(c->base, SIGINT, on_signal, c);
    c->sigterm_ev = evsignal_new(c->base, SIGTERM, on_signal, c);
    if (c->sigint_ev == NULL || c->sigterm_ev == NULL)
        return false;
    event_add(c->sigint_ev, NULL);
    event_add(c->sigterm_ev, NULL);
    if (o->timeout_s > 0 && (c->timeout_ev = add_timer(c, o->timeout_s, on_timeout)) == NULL)
        return false;
    if (o->duration_s > 0 && (c->duration_ev = add_timer(c, o->duration_s, on_duration)) == NULL)
        return false;
    return true;
}

static void client_print_summary(const struct client *c)
{
    for (size_t i = 0; i < c->session_count; i++) {
        const struct session *s = &c->sessions[i];
        char last[32];
        if (s->has_last_id)
            snprintf(last, sizeof(last), "%" PRId64, s->last_id);
        else
            snprintf(last, sizeof(last), "%.30s",
                     c->opt.last_event_id != NULL ? c->opt.last_event_id : "-");
        fprintf(stderr, "session %zu consumer=%s events=%llu last_id=%s reconnects=%lu\n", s->index,
                s->consumer != NULL ? s->consumer : "", s->events, last,
                s->connections > 0 ? s->connections - 1 : 0);
    }
}

/* One line for the benchmark scripts, printed even with --quiet. */
static void client_print_totals(const struct client *c)
{
    unsigned long long events = 0, connections = 0;
    for (size_t i = 0; i < c->session_count; i++) {
        events += c->sessions[i].events;
        connections += c->sessions[i].connections;
    }
    fprintf(stderr, "total sessions=%zu events=%llu connections=%llu", c->session_count, events,
            connections);
    if (c->latency != NULL) {
        const struct latency *h = c->latency;
        fprintf(stderr,
                " latency_count=%" PRIu64 " without_stamp=%" PRIu64 " p50_us=%" PRId64
                " p90_us=%" PRId64 " p99_us=%" PRId64 " p999_us=%" PRId64 " max_us=%" PRId64,
                latency_count(h), c->events_without_stamp, latency_quantile(h, 0.5),
                latency_quantile(h, 0.9), latency_quantile(h, 0.99), latency_quantile(h, 0.999),
                latency_max(h));
    }
    fputc('\n', stderr);
}

/* The histogram for bench/run.sh, which adds up several clients' to get
 * the percentiles of all their events together. */
static bool write_latency_file(const struct client *c)
{
    if (c->latency == NULL || c->opt.latency_file == NULL)
        return true;
    FILE *f = fopen(c->opt.latency_file, "w");
    bool ok = f != NULL && latency_write(c->latency, f);
    if (f != NULL && fclose(f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "sse-client: cannot write %s\n", c->opt.latency_file);
    return ok;
}

static void free_event(struct event *ev)
{
    if (ev != NULL)
        event_free(ev);
}

static void client_free(struct client *c)
{
    for (size_t i = 0; c->sessions != NULL && i < c->session_count; i++) {
        struct session *s = &c->sessions[i];
        if (s->bev != NULL)
            bufferevent_free(s->bev);
        free_event(s->timer);
        if (s->out != NULL)
            fclose(s->out);
        sse_stream_release(&s->parser);
    }
    free(c->sessions);
    free_event(c->timeout_ev);
    free_event(c->duration_ev);
    free_event(c->sigint_ev);
    free_event(c->sigterm_ev);
    if (c->base != NULL)
        event_base_free(c->base);
    libevent_global_shutdown();
    latency_free(c->latency);
    options_free(&c->opt);
}

int main(int argc, char **argv)
{
    struct client c;
    memset(&c, 0, sizeof(c));
    options_init(&c.opt);
    int code = options_parse(&c.opt, argc, argv);
    if (code >= 0) {
        options_free(&c.opt);
        return code;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(&c);
    if (!client_setup(&c)) {
        client_free(&c);
        return EXIT_NOT_DONE;
    }
    for (size_t i = 0; i < c.session_count && !c.exiting; i++)
        session_connect(&c.sessions[i]);
    if (!c.exiting && event_base_dispatch(c.base) != 0 && !c.exiting)
        client_exit(&c, EXIT_NOT_DONE, "sse-client: event loop failed");
    if (!c.exiting)
        client_exit(&c, EXIT_NOT_DONE, "sse-client: nothing left to wait for");
    if (!c.opt.quiet)
        client_print_summary(&c);
    if (!c.opt.quiet || c.opt.latency)
        client_print_totals(&c);
    code = c.exit_code;
    if (!write_latency_file(&c) && code == 0)
        code = EXIT_NOT_DONE;
    client_free(&c);
    return code;
}
