/*
 * Demo page files and test inserts. An insert borrows a pool connection for
 * one statement; its job outlives a cancelled requester until the statement
 * is done, because the pool and the connection still point at it, or until
 * demo_free at shutdown.
 */
#include "api/demo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/list.h"
#include "ops/log.h"
#include "util/number.h"

#define DEMO_FILE_MAX (1024 * 1024)

static const struct {
    const char *name;
    const char *content_type;
} page_files[] = {
    {"index.html", "text/html; charset=utf-8"},
    {"app.js", "text/javascript; charset=utf-8"},
    {"style.css", "text/css; charset=utf-8"},
};

#define PAGE_FILE_COUNT (sizeof(page_files) / sizeof(page_files[0]))

struct demo {
    struct pg_pool *pool;
    struct list_node inserts; /* in flight, owned here until done */
    struct demo_file files[PAGE_FILE_COUNT];
    size_t file_count;
};

struct demo_insert {
    struct pg_pool_waiter waiter;
    struct list_node link; /* in demo->inserts */
    struct demo *demo;
    char *params[3];
    demo_done_fn done; /* NULL once cancelled */
    void *arg;
};

static bool load_file(struct demo_file *f, const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *in = fopen(path, "rb");
    if (in == NULL) {
        log_warn("demo page file missing", "path=%s error=%s", path, strerror(errno));
        return false;
    }
    f->bytes = malloc(DEMO_FILE_MAX);
    f->len = f->bytes != NULL ? fread(f->bytes, 1, DEMO_FILE_MAX, in) : 0;
    bool ok = f->bytes != NULL && !ferror(in) && f->len < DEMO_FILE_MAX;
    fclose(in);
    if (ok) { /* keep what the file needs, not the read buffer's size */
        char *fit = realloc(f->bytes, f->len > 0 ? f->len : 1);
        if (fit != NULL)
            f->bytes = fit;
    }
    if (!ok) {
        log_warn("demo page file unreadable or too large", "path=%s", path);
        free(f->bytes);
        f->bytes = NULL;
    }
    return ok;
}

struct demo *demo_new(const char *dir, struct pg_pool *pool)
{
    struct demo *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->pool = pool;
    list_init(&d->inserts);
    for (size_t i = 0; i < PAGE_FILE_COUNT; i++) {
        struct demo_file *f = &d->files[d->file_count];
        f->name = page_files[i].name;
        f->content_type = page_files[i].content_type;
        if (load_file(f, dir, page_files[i].name))
            d->file_count++;
    }
    return d;
}

static void insert_free(struct demo_insert *ins);

void demo_free(struct demo *d)
{
    if (d == NULL)
        return;
    /* Inserts still waiting for a connection or running: their callbacks
     * never come (the loop has stopped, and pg_pool_free drops the
     * statement), so they end here. */
    while (!list_empty(&d->inserts)) {
        struct demo_insert *ins = container_of(d->inserts.next, struct demo_insert, link);
        pg_pool_cancel(d->pool, &ins->waiter);
        insert_free(ins);
    }
    for (size_t i = 0; i < d->file_count; i++)
        free(d->files[i].bytes);
    free(d);
}

const struct demo_file *demo_find(const struct demo *d, const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < d->file_count; i++) {
        if (path[0] == '/' && strcmp(path + 1, d->files[i].name) == 0)
            return &d->files[i];
    }
    return NULL;
}

static void insert_free(struct demo_insert *ins)
{
    list_remove(&ins->link);
    for (size_t i = 0; i < 3; i++)
        free(ins->params[i]);
    free(ins);
}

static void on_inserted(struct pg_conn *c, const PGresult *res, void *arg)
{
    struct demo_insert *ins = arg;
    pg_pool_release(ins->demo->pool, c);
    if (ins->done != NULL) {
        int64_t id = 0;
        if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
            parse_int64(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 1, INT64_MAX, &id))
            ins->done(ins->arg, id, NULL);
        else
            ins->done(ins->arg, 0, res != NULL ? "the insert failed" : "database connection lost");
    }
    if (res != NULL && PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warn("demo insert failed", "error=%s", PQresultErrorMessage(res));
    insert_free(ins);
}

static void on_granted(struct pg_pool_waiter *w, struct pg_conn *conn)
{
    struct demo_insert *ins = container_of(w, struct demo_insert, waiter);
    const char *params[3] = {ins->params[0], ins->params[1], ins->params[2]};
    if (pg_conn_query(conn,
                      "INSERT INTO events (type, subscriber, payload) VALUES ($1, $2, $3::jsonb) "
                      "RETURNING id",
                      3, params, on_inserted, ins))
        return;
    pg_pool_release(ins->demo->pool, conn);
    if (ins->done != NULL)
        ins->done(ins->arg, 0, "database connection lost");
    insert_free(ins);
}

struct demo_insert *demo_insert(struct demo *d, const char *subscriber, const char *type,
                                const char *payload_json, demo_done_fn done, void *arg)
{
    struct demo_insert *ins = calloc(1, sizeof(*ins));
    if (ins == NULL)
        return NULL;
    ins->demo = d;
    list_append(&d->inserts, &ins->link);
    ins->params[0] = strdup(type);
    ins->params[1] = strdup(subscriber);
    ins->params[2] = strdup(payload_json);
    ins->done = done;
    ins->arg = arg;
    if (ins->params[0] == NULL || ins->params[1] == NULL || ins->params[2] == NULL) {
        insert_free(ins);
        return NULL;
    }
    pg_pool_waiter_init(&ins->waiter, on_granted);
    pg_pool_acquire(d->pool, &ins->waiter);
    return ins;
}

void demo_insert_cancel(struct demo_insert *ins)
{
    ins->done = NULL;
}
