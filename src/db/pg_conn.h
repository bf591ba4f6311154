/*
 * pg_conn: one PostgreSQL connection driven entirely by the event loop.
 *
 * Connects with PQconnectStartParams/PQconnectPoll, runs an optional setup
 * command (LISTEN, PREPARE ...), then runs queued commands one at a time with
 * PQsendQuery, PQconsumeInput and PQgetResult, and reports notifications. The
 * socket is watched by libevent and PQsocket() is re-read on every re-arm, so
 * nothing here ever blocks the loop (except DNS resolution of a host name
 * inside libpq: use an address or a unix socket where that matters).
 *
 * TCP keepalives are on by default so a silently dead server is noticed;
 * settings in the conninfo win over these defaults.
 *
 * Ownership: the creator owns the connection and frees it with
 * pg_conn_free(), which is safe from inside any of its callbacks (the free
 * then happens when the callback returns) and drops queued commands without
 * calling them. When the connection fails, every queued command's callback
 * runs with res == NULL, then lost() runs once; no callback follows it.
 */
#ifndef PIPER_PG_CONN_H
#define PIPER_PG_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <libpq-fe.h>

struct pg_conn;

struct pg_conn_handler {
    /* Connected and the setup command succeeded. */
    void (*ready)(struct pg_conn *c, void *arg);
    /* A NOTIFY arrived (may be NULL if the connection does not LISTEN). */
    void (*notify)(struct pg_conn *c, const char *channel, const char *payload, void *arg);
    /* The connection failed or broke; reason is a one-line message. */
    void (*lost)(struct pg_conn *c, const char *reason, void *arg);
};

/* Called once per command with its final result (the first error if any
 * statement failed), or with res == NULL if the connection was lost first.
 * res is cleared after the callback returns. */
typedef void (*pg_result_fn)(struct pg_conn *c, const PGresult *res, void *arg);

/* Starts connecting. Returns NULL only on allocation failure; connection
 * errors are reported through lost(). connect_timeout_s bounds the connect
 * and setup phase. */
struct pg_conn *pg_conn_new(struct event_base *base, const char *conninfo,
                            const char *application_name, const char *setup_sql,
                            int connect_timeout_s, const struct pg_conn_handler *handler,
                            void *arg);

void pg_conn_free(struct pg_conn *c);

/* Queues a command: plain SQL when stmt_name is NULL, otherwise an
 * execution of a statement prepared by the setup command. Parameters are
 * text. Returns false (and never calls fn) when the connection is lost. */
bool pg_conn_query(struct pg_conn *c, const char *sql, int nparams, const char *const *params,
                   pg_result_fn fn, void *arg) __attribute__((warn_unused_result));
bool pg_conn_execute(struct pg_conn *c, const char *stmt_name, int nparams,
                     const char *const *params, pg_result_fn fn, void *arg)
    __attribute__((warn_unused_result));

bool pg_conn_is_ready(const struct pg_conn *c);
/* Commands queued or running. */
size_t pg_conn_pending(const struct pg_conn *c);
/* The server process id, for logs (0 before ready). */
int pg_conn_backend_pid(const struct pg_conn *c);

#endif
