/*
 * producer: inserts benchmark events at a target rate, N rows per
 * transaction, over one libpq connection.
 *
 *   producer --db URL --rate ROWS_PER_S --rows-per-tx N --consumers K
 *            [--prefix c] [--offset I] [--duration S] [--pad BYTES] [--type bench]
 *
 * Row j of the run goes to consumer <prefix><(offset + j) mod K>, so several
 * producers with different offsets spread evenly. Each payload is
 * {"t": <microseconds since the epoch when PostgreSQL inserted the row>,
 *  "pad": "xxx..."}: sse-client --latency measures from "t". Rows of one
 * transaction are inserted in subscriber order (the deadlock rule of the
 * schema's per-subscriber lock).
 *
 * Transactions start on an absolute schedule (CLOCK_MONOTONIC); when the
 * database is slower than the rate, the producer runs flat out and reports
 * the rate it reached. At exit it prints one line:
 *   produced rows=R transactions=T seconds=S rate=R/S
 * A benchmark tool, not part of the service: plain blocking libpq is fine.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

struct settings {
    const char *db;
    double rate;
    long rows_per_tx;
    long consumers;
    const char *prefix;
    long offset;
    double duration;
    long pad;
    const char *type;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    double left = t - now_s();
    if (left <= 0)
        return;
    struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stopping) {
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: producer --db URL --rate ROWS_PER_S --rows-per-tx N --consumers K\n"
                    "                [--prefix c] [--offset I] [--duration S] [--pad BYTES]"
                    " [--type bench]\n");
    return 64;
}

static int parse(int argc, char **argv, struct settings *s)
{
    *s = (struct settings){NULL, 1000, 1, 1, "c", 0, 10, 100, "bench"};
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        char *end = NULL;
        if (strcmp(name, "--db") == 0)
            s->db = v;
        else if (strcmp(name, "--prefix") == 0)
            s->prefix = v;
        else if (strcmp(name, "--type") == 0)
            s->type = v;
        else if (strcmp(name, "--rate") == 0)
            s->rate = strtod(v, &end);
        else if (strcmp(name, "--duration") == 0)
            s->duration = strtod(v, &end);
        else if (strcmp(name, "--rows-per-tx") == 0)
            s->rows_per_tx = strtol(v, &end, 10);
        else if (strcmp(name, "--consumers") == 0)
            s->consumers = strtol(v, &end, 10);
        else if (strcmp(name, "--offset") == 0)
            s->offset = strtol(v, &end, 10);
        else if (strcmp(name, "--pad") == 0)
            s->pad = strtol(v, &end, 10);
        else
            return usage();
        if (end != NULL && *end != '\0')
            return usage();
    }
    if (s->db == NULL || s->rate <= 0 || s->rows_per_tx < 1 || s->consumers < 1 || s->pad < 0 ||
        s->duration <= 0)
        return usage();
    return -1;
}

/* One transaction of n rows for consumers (first + j) mod K, in subscriber
 * order. Parameters: $1 type, $2 prefix, $3 first, $4 K, $5 n, $6 pad. */
static const char insert_sql[] =
    "insert into events (type, subscriber, payload) "
    "select $1, $2 || ((($3::bigint + g) % $4::bigint)::text), "
    "jsonb_build_object('t', (extract(epoch from clock_timestamp()) * 1000000)::bigint, "
    "'pad', $6::text) "
    "from generate_series(0, $5::int - 1) g order by 2";

static bool run_tx(PGconn *conn, const struct settings *s, long long first, const char *pad)
{
    char first_s[32], k_s[32], n_s[32];
    snprintf(first_s, sizeof(first_s), "%lld", first);
    snprintf(k_s, sizeof(k_s), "%ld", s->consumers);
    snprintf(n_s, sizeof(n_s), "%ld", s->rows_per_tx);
    const char *params[] = {s->type, s->prefix, first_s, k_s, n_s, pad};
    PGresult *r = PQexecPrepared(conn, "insert", 6, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "producer: insert failed: %s", PQerrorMessage(conn));
    PQclear(r);
    return ok;
}

int main(int argc, char **argv)
{
    struct settings s;
    int code = parse(argc, argv, &s);
    if (code >= 0)
        return code;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    PGconn *conn = PQconnectdb(s.db);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "producer: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    PGresult *r = PQprepare(conn, "insert", insert_sql, 6, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "producer: prepare failed: %s", PQerrorMessage(conn));
        PQclear(r);
        PQfinish(conn);
        return 1;
    }
    PQclear(r);
    char *pad = malloc((size_t)s.pad + 1);
    if (pad == NULL)
        return 1;
    memset(pad, 'x', (size_t)s.pad);
    pad[s.pad] = '\0';

    double interval = (double)s.rows_per_tx / s.rate;
    double start = now_s();
    long long rows = 0, transactions = 0;
    bool ok = true;
    while (!stopping && ok) {
        double due = start + (double)transactions * interval;
        if (due - start >= s.duration)
            break;
        sleep_until(due);
        ok = run_tx(conn, &s, s.offset + rows, pad);
        if (ok) {
            rows += s.rows_per_tx;
            transactions++;
        }
    }
    double seconds = now_s() - start;
    printf("produced rows=%lld transactions=%lld seconds=%.3f rate=%.0f\n", rows, transactions,
           seconds, seconds > 0 ? (double)rows / seconds : 0.0);
    free(pad);
    PQfinish(conn);
    return ok ? 0 : 1;
}
