/*
 * event-piper: wires the modules together and runs the loop.
 *
 *   ingest (pg_listener, or nats_ingest) --confirm--> hub --> sessions
 *                                                       ^        |
 *   replay (pg_pool) -----------------------------------+        v sinks
 *   net (HTTP/1.1, HTTP/2, WebSocket, TLS) --exchanges--> router
 *
 * Start-up creates everything (failing fast with a message naming the cause);
 * SIGTERM or SIGINT stops accepting, ends every stream cleanly and exits once
 * they are gone or SHUTDOWN_SECONDS passed; a second signal exits at once.
 * SIGHUP reloads API_KEYS_FILE, the JWT keys and the TLS certificate without
 * touching open streams; a reload that fails keeps what was loaded.
 * Tear-down runs in reverse order so nothing outlives what it points to.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>

#include <event2/event.h>

#include "api/auth.h"
#include "api/demo.h"
#include "api/router.h"
#include "core/frame.h"
#include "core/hub.h"
#include "core/replay.h"
#include "core/session.h"
#include "db/pg_pool.h"
#include "db/retention.h"
#include "ingest/confirm.h"
#include "ingest/nats_ingest.h"
#include "ingest/pg_listener.h"
#include "net/server.h"
#include "net/tls.h"
#include "ops/config.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "util/clock.h"

#define CONNECT_TIMEOUT_SECONDS 10
/* Client frames a WebSocket stream accepts: control frames only (pong,
 * ping, close), which RFC 6455 keeps within 125 bytes. */
#define WS_MAX_MESSAGE_BYTES 1024
/* Hints (notifications, NATS messages) waiting to be confirmed from the
 * table; beyond, the streams resynchronise from the table (confirm.h). */
#define INGEST_HINTS_MAX 100000

struct service {
    struct config cfg;
    struct event_base *base;
    struct hub *hub;
    struct pg_pool *pool;
    struct replay *replay;
    struct sessions *sessions;
    struct router *router;
    struct net_server *server;
    struct tls_context *tls;
    struct auth *auth; /* NULL when authentication is off */
    struct demo *demo;
    struct history *history;
    struct pg_listener *listener; /* INGEST=pg_notify */
    struct nats_ingest *nats;     /* INGEST=nats */
    struct retention *retention;  /* NULL with RETENTION_SECONDS=0 */
    struct event *sigterm_ev;
    struct event *sigint_ev;
    struct event *sighup_ev;
    char *pool_setup_sql;
    bool stopping;
    double started_at;
};

static bool ingest_live(const struct service *svc)
{
    if (svc->nats != NULL)
        return nats_ingest_is_live(svc->nats);
    return svc->listener != NULL && pg_listener_is_live(svc->listener);
}

static bool service_ready(void *arg, const char **reason)
{
    struct service *svc = arg;
    if (!ingest_live(svc)) {
        *reason = svc->cfg.ingest == INGEST_NATS ? "not consuming from NATS"
                                                 : "not listening to PostgreSQL";
        return false;
    }
    long long max_age = svc->cfg.ready_max_ingest_age_seconds;
    if (svc->nats != NULL && max_age > 0 && nats_ingest_message_age(svc->nats) > (double)max_age) {
        *reason = "no NATS message or heartbeat within READY_MAX_INGEST_AGE_SECONDS";
        return false;
    }
    return true;
}

static void service_gauges(void *arg, struct metrics_gauges *g)
{
    struct service *svc = arg;
    struct pg_pool_stats pool;
    pg_pool_get_stats(svc->pool, &pool);
    g->sessions_open = sessions_count(svc->sessions);
    for (int k = 0; k < TRANSPORT_KIND_COUNT; k++)
        g->streams_open[k] = sessions_count_by_transport(svc->sessions, (enum transport_kind)k);
    net_server_gauges(svc->server, g);
    g->consumers = hub_consumer_count(svc->hub);
    g->replay_jobs = replay_active_jobs(svc->replay);
    g->replay_pool_open = pool.open;
    g->replay_pool_in_use = pool.in_use;
    g->replay_pool_waiting = pool.waiting;
    g->replay_budget_bytes = replay_budget_used(svc->replay);
    g->replay_budget_waiting = replay_budget_waiting(svc->replay);
    g->long_polls_waiting = svc->history != NULL ? history_waiting(svc->history) : 0;
    g->ingest_connected = ingest_live(svc) ? 1 : 0;
    g->ingest_backlog = svc->nats != NULL       ? nats_ingest_backlog(svc->nats)
                        : svc->listener != NULL ? pg_listener_backlog(svc->listener)
                                                : 0;
    g->started_at = svc->started_at;
    g->ingest_message_age = svc->nats != NULL ? nats_ingest_message_age(svc->nats) : -1;
}

static bool service_draining(void *arg)
{
    struct service *svc = arg;
    return svc->stopping;
}

static struct auth *auth_load(const struct config *cfg, char *error, size_t error_size)
{
    struct auth_options options = {
        .hs256_secret = cfg->jwt_hs256_secret,
        .rs256_key_file = cfg->jwt_rs256_public_key_file,
        .consumer_claim = cfg->jwt_consumer_claim,
        .api_keys_file = cfg->api_keys_file,
        .audience = cfg->jwt_audience,
        .issuer = cfg->jwt_issuer,
        .allow_no_exp = cfg->jwt_allow_no_exp != 0,
        .leeway_seconds = (int)cfg->jwt_leeway_seconds,
        .consumer_id_max_bytes = (int)cfg->consumer_id_max_bytes,
    };
    return auth_new(&options, error, error_size);
}

/* SIGHUP: keys and certificates are read again; open streams keep running
 * (a stream was authorised when it opened). Whatever fails to load is
 * logged and the previous version stays. */
static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    struct service *svc = arg;
    char error[512];
    (void)sig;
    (void)what;
    if (svc->auth != NULL) {
        struct auth *fresh = auth_load(&svc->cfg, error, sizeof(error));
        if (fresh == NULL) {
            log_error("reload: keys kept as they were", "reason=%s", error);
        } else {
            router_set_auth(svc->router, fresh);
            auth_free(svc->auth);
            svc->auth = fresh;
            log_info("reload: authentication keys loaded", "");
        }
    }
    if (svc->tls != NULL) {
        if (tls_context_reload(svc->tls, error, sizeof(error)))
            log_info("reload: TLS certificate loaded", "file=%s", svc->cfg.tls_cert_file);
        else
            log_error("reload: TLS certificate kept as it was", "reason=%s", error);
    }
}

static void on_streams_ended(void *arg)
{
    struct service *svc = arg;
    log_info("all streams ended", "");
    event_base_loopexit(svc->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct service *svc = arg;
    struct timeval deadline = {svc->cfg.shutdown_seconds, 0};
    (void)what;

    if (svc->stopping) {
        log_warn("second signal: exiting now", "signal=%d", (int)sig);
        event_base_loopbreak(svc->base);
        return;
    }
    svc->stopping = true;
    log_info("shutting down", "signal=%d deadline_seconds=%lld", (int)sig,
             svc->cfg.shutdown_seconds);
    net_server_drain(svc->server);
    retention_stop(svc->retention);
    sessions_shutdown(svc->sessions, &deadline, on_streams_ended, svc);
}

/* Streams are file descriptors: take all the kernel allows this process. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("cannot raise the open files limit", "error=%s", strerror(errno));
}

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

/* In NATS mode PostgreSQL is only used for replay, through the pool. */
static bool ingest_start(struct service *svc)
{
    const struct config *cfg = &svc->cfg;
    if (cfg->ingest == INGEST_NATS) {
        struct nats_ingest_options nats_options = {
            .url = cfg->nats_url,
            .subject = cfg->nats_subject,
            .stream = cfg->nats_stream,
            .reconnect_ms = (int)cfg->nats_reconnect_ms,
            .reconnect_max_ms = (int)cfg->pg_reconnect_max_ms,
            .hints_max = INGEST_HINTS_MAX,
        };
        svc->nats = nats_ingest_new(svc->base, svc->hub, svc->pool, &nats_options);
        return svc->nats != NULL;
    }
    struct pg_listener_options listener_options = {
        .conninfo = cfg->database_url,
        .reconnect_min_ms = (int)cfg->pg_reconnect_min_ms,
        .reconnect_max_ms = (int)cfg->pg_reconnect_max_ms,
        .ping_seconds = (int)cfg->pg_ping_seconds,
        .ping_timeout_seconds = (int)cfg->pg_ping_timeout_seconds,
        .connect_timeout_s = CONNECT_TIMEOUT_SECONDS,
        .hints_max = INGEST_HINTS_MAX,
    };
    svc->listener = pg_listener_new(svc->base, svc->hub, &listener_options);
    return svc->listener != NULL;
}

static bool service_start(struct service *svc)
{
    const struct config *cfg = &svc->cfg;

    svc->started_at = clock_wall_seconds();
    svc->base = event_base_new();
    if (svc->base == NULL)
        return false;
    svc->hub = hub_new((size_t)cfg->held_events_max);
    size_t setup_len =
        strlen(replay_prepare_sql) + strlen(confirm_prepare_sql) + strlen(history_prepare_sql) + 1;
    svc->pool_setup_sql = malloc(setup_len);
    if (svc->hub == NULL || svc->pool_setup_sql == NULL)
        return false;
    snprintf(svc->pool_setup_sql, setup_len, "%s%s%s", replay_prepare_sql, confirm_prepare_sql,
             history_prepare_sql);
    struct pg_pool_options pool_options = {
        .conninfo = cfg->database_url,
        .setup_sql = svc->pool_setup_sql,
        .size = (size_t)cfg->replay_pool_size,
        .idle_seconds = (int)cfg->replay_idle_seconds,
        .reconnect_min_ms = (int)cfg->pg_reconnect_min_ms,
        .reconnect_max_ms = (int)cfg->pg_reconnect_max_ms,
        .connect_timeout_s = CONNECT_TIMEOUT_SECONDS,
    };
    svc->pool = pg_pool_new(svc->base, &pool_options);
    struct replay_options replay_options = {
        .page_rows = (size_t)cfg->replay_page_rows,
        .page_bytes = (size_t)cfg->replay_page_bytes,
        .budget_bytes = (size_t)cfg->replay_buffer_bytes,
        .retry_min_ms = (int)cfg->pg_reconnect_min_ms,
        .retry_max_ms = (int)cfg->pg_reconnect_max_ms,
    };
    if (svc->hub == NULL || svc->pool == NULL)
        return false;
    svc->replay = replay_new(svc->base, svc->hub, svc->pool, &replay_options);
    if (svc->replay == NULL)
        return false;
    hub_set_resync_hook(svc->hub, replay_resync, svc->replay);

    struct session_settings session_settings = {
        .heartbeat_seconds = (int)cfg->heartbeat_seconds,
        .retry_ms = cfg->retry_ms,
        .soft_bytes = (size_t)cfg->session_buffer_soft_bytes,
        .soft_seconds = (int)cfg->session_buffer_soft_seconds,
        .hard_bytes = (size_t)cfg->session_buffer_hard_bytes,
        .write_timeout_seconds = (int)cfg->write_timeout_seconds,
    };
    svc->sessions = sessions_new(svc->base, svc->hub, svc->replay, &session_settings);
    if (svc->sessions == NULL)
        return false;
    char error[512];
    svc->auth = auth_load(cfg, error, sizeof(error));
    if (svc->auth == NULL && error[0] != '\0') {
        log_error("authentication cannot start", "reason=%s", error);
        return false;
    }
    if (cfg->tls_cert_file[0] != '\0') {
        svc->tls = tls_context_new(cfg->tls_cert_file, cfg->tls_key_file, error, sizeof(error));
        if (svc->tls == NULL) {
            log_error("TLS cannot start", "reason=%s", error);
            return false;
        }
    }
    svc->demo = demo_new(cfg->demo_dir, svc->pool);
    if (svc->demo == NULL)
        return false;
    struct router_hooks hooks = {service_ready, service_gauges, service_draining, svc};
    svc->history = history_new(svc->base, svc->hub, svc->pool);
    if (svc->history == NULL)
        return false;
    svc->router = router_new(cfg, svc->sessions, svc->history, &hooks, svc->auth, svc->demo);
    if (svc->router == NULL)
        return false;
    struct net_settings net_settings = {
        .max_connections = (size_t)cfg->max_connections,
        .request_timeout_seconds = (int)cfg->request_timeout_seconds,
        .write_timeout_seconds = (int)cfg->write_timeout_seconds,
        .max_header_bytes = (size_t)cfg->max_header_bytes,
        .max_body_bytes = (size_t)cfg->max_body_bytes,
        .proxy_protocol = cfg->proxy_protocol != 0,
        .socket_buffer_bytes = (int)cfg->session_socket_buffer_bytes,
        .h2_max_concurrent_streams = (unsigned)cfg->h2_max_concurrent_streams,
        .ws_max_message_bytes = WS_MAX_MESSAGE_BYTES,
    };
    struct net_handler handler = {router_handle, svc->router};
    svc->server = net_server_new(svc->base, &net_settings, svc->tls, &handler);
    if (svc->server == NULL || !net_server_listen(svc->server, cfg->bind_address, cfg->port))
        return false;

    if (!ingest_start(svc))
        return false;
    if (cfg->retention_seconds > 0) {
        struct retention_options retention_options = {
            .conninfo = cfg->database_url,
            .retention_seconds = cfg->retention_seconds,
            .interval_seconds = (int)cfg->retention_interval_seconds,
            .batch_rows = (int)cfg->retention_batch_rows,
            .batch_pause_ms = (int)cfg->retention_batch_pause_ms,
            .reconnect_min_ms = (int)cfg->pg_reconnect_min_ms,
            .reconnect_max_ms = (int)cfg->pg_reconnect_max_ms,
            .connect_timeout_s = CONNECT_TIMEOUT_SECONDS,
        };
        svc->retention = retention_new(svc->base, &retention_options);
        if (svc->retention == NULL)
            return false;
    }
    svc->sigterm_ev = evsignal_new(svc->base, SIGTERM, on_signal, svc);
    svc->sigint_ev = evsignal_new(svc->base, SIGINT, on_signal, svc);
    svc->sighup_ev = evsignal_new(svc->base, SIGHUP, on_reload, svc);
    if (svc->sigterm_ev == NULL || svc->sigint_ev == NULL || svc->sighup_ev == NULL)
        return false;
    event_add(svc->sigterm_ev, NULL);
    event_add(svc->sigint_ev, NULL);
    event_add(svc->sighup_ev, NULL);
    return true;
}

/* Reverse order of creation. Connections go first (their streams report
 * gone to the sessions, answers still pending are aborted), then the
 * sessions, then the ingest and replay that fed them. */
static void service_stop(struct service *svc)
{
    net_server_free(svc->server);
    sessions_free(svc->sessions);
    router_free(svc->router);
    history_free(svc->history);
    demo_free(svc->demo);
    auth_free(svc->auth);
    tls_context_free(svc->tls);
    retention_free(svc->retention);
    pg_listener_free(svc->listener);
    nats_ingest_free(svc->nats);
    replay_free(svc->replay);
    pg_pool_free(svc->pool);
    hub_free(svc->hub);
    if (svc->sigterm_ev != NULL)
        event_free(svc->sigterm_ev);
    if (svc->sigint_ev != NULL)
        event_free(svc->sigint_ev);
    if (svc->sighup_ev != NULL)
        event_free(svc->sighup_ev);
    if (svc->base != NULL)
        event_base_free(svc->base);
    frame_release_scratch();
    session_release_scratch();
    free(svc->pool_setup_sql);
    config_free(&svc->cfg);
}

/* A replay page (libpq's result, then its frames) is allocated and freed
 * as a whole, hundreds of KiB at a time. With glibc's default the freed top
 * of the heap went back to the kernel after every page and was faulted in
 * again for the next: a quarter of the service's CPU in a replay (perf,
 * bench/RESULTS.md). Keeping up to this much freed heap costs little next
 * to the working set of the replay pool's pages. */
enum { KEPT_FREE_HEAP_BYTES = 8 * 1024 * 1024 };

static void keep_freed_heap(void)
{
    mallopt(M_TRIM_THRESHOLD, KEPT_FREE_HEAP_BYTES);
}

int main(int argc, char **argv)
{
    struct service svc;
    memset(&svc, 0, sizeof(svc));

    switch (config_load(&svc.cfg, argc, argv, env_lookup, stdout, stderr)) {
    case CONFIG_EXIT_SUCCESS:
        return 0;
    case CONFIG_INVALID:
        return 2;
    case CONFIG_OK:
        break;
    }
    log_configure((enum log_format)svc.cfg.log_format, (enum log_level)svc.cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    keep_freed_heap();
    config_log(&svc.cfg);

    int status = 0;
    if (!service_start(&svc)) {
        log_error("start-up failed", "");
        status = 1;
    } else {
        event_base_dispatch(svc.base);
        log_info("stopped", "");
    }
    service_stop(&svc);
    return status;
}
