/*
 * Settings table and its parser.
 *
 * The table is the single source of truth: name, type, bounds, default and
 * help text. Parsing is strict (no trailing garbage, bounds checked) because
 * a typo in a deployment should stop the service at start-up with a message
 * naming the setting, not run it with a surprising value.
 */
#include "ops/config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops/log.h"
#include "util/number.h"

#ifndef PIPER_VERSION
#define PIPER_VERSION "dev"
#endif

enum setting_type { SETTING_STRING, SETTING_INT, SETTING_BYTES, SETTING_CHOICE };

struct setting {
    const char *env;
    enum setting_type type;
    size_t offset;
    const char *default_value;
    long long min;
    long long max;
    const char *const *choices;
    const char *help;
};

static const char *const log_level_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_format_choices[] = {"logfmt", "json", NULL};
static const char *const ingest_choices[] = {"pg_notify", "nats", NULL};

#define KIB 1024LL
#define MIB (1024LL * 1024LL)
#define GIB (1024LL * 1024LL * 1024LL)

static const struct setting settings[] = {
    {"DATABASE_URL", SETTING_STRING, offsetof(struct config, database_url), "", 0, 0, NULL,
     "libpq conninfo or URI; empty means libpq's PG* environment defaults"},
    {"BIND_ADDRESS", SETTING_STRING, offsetof(struct config, bind_address), "0.0.0.0", 0, 0, NULL,
     "address the HTTP server listens on"},
    {"PORT", SETTING_INT, offsetof(struct config, port), "4000", 1, 65535, NULL, "HTTP port"},
    {"HEARTBEAT_SECONDS", SETTING_INT, offsetof(struct config, heartbeat_seconds), "15", 1, 3600,
     NULL, "seconds between heartbeat comments on every stream"},
    {"RETRY_MS", SETTING_INT, offsetof(struct config, retry_ms), "2000", 0, 3600000, NULL,
     "reconnect delay advertised to clients with the SSE retry: field"},
    {"MAX_SESSIONS", SETTING_INT, offsetof(struct config, max_sessions), "10000", 1, 10000000, NULL,
     "open streams allowed; beyond it /events answers 503 with Retry-After"},
    {"MAX_CONNECTIONS", SETTING_INT, offsetof(struct config, max_connections), "0", 0, 10000000,
     NULL, "open client connections allowed (accepting pauses beyond); 0: MAX_SESSIONS + 1000"},
    {"MAX_STREAMS_PER_IP", SETTING_INT, offsetof(struct config, max_streams_per_ip), "1000", 0,
     10000000, NULL, "open streams one client address may have (429 beyond); 0: no limit"},
    {"MAX_STREAMS_PER_CONSUMER", SETTING_INT, offsetof(struct config, max_streams_per_consumer),
     "0", 0, 10000000, NULL, "open streams one consumer id may have (429 beyond); 0: no limit"},
    {"MAX_CONSUMERS_PER_STREAM", SETTING_INT, offsetof(struct config, max_consumers_per_stream),
     "32", 1, 1000, NULL, "consumer ids one stream or history request may follow (400 beyond)"},
    {"PROXY_PROTOCOL", SETTING_INT, offsetof(struct config, proxy_protocol), "0", 0, 1, NULL,
     "1: every connection starts with a PROXY protocol v1 or v2 header (from a load balancer)"},
    {"TLS_CERT_FILE", SETTING_STRING, offsetof(struct config, tls_cert_file), "", 0, 0, NULL,
     "PEM certificate chain; with TLS_KEY_FILE the port speaks TLS (ALPN h2, http/1.1)"},
    {"TLS_KEY_FILE", SETTING_STRING, offsetof(struct config, tls_key_file), "", 0, 0, NULL,
     "PEM private key of TLS_CERT_FILE"},
    {"H2_MAX_CONCURRENT_STREAMS", SETTING_INT, offsetof(struct config, h2_max_concurrent_streams),
     "100", 1, 10000, NULL, "HTTP/2 streams one connection may have open at once"},
    {"CONSUMER_ID_MAX_BYTES", SETTING_INT, offsetof(struct config, consumer_id_max_bytes), "256", 1,
     4096, NULL, "longest accepted consumer id"},
    {"MAX_HEADER_BYTES", SETTING_BYTES, offsetof(struct config, max_header_bytes), "8k", 1024, MIB,
     NULL, "largest request line plus headers accepted"},
    {"MAX_BODY_BYTES", SETTING_BYTES, offsetof(struct config, max_body_bytes), "64k", 1024,
     16 * MIB, NULL, "largest request body accepted (413 beyond)"},
    {"REQUEST_TIMEOUT_SECONDS", SETTING_INT, offsetof(struct config, request_timeout_seconds), "10",
     1, 3600, NULL, "time allowed to receive a request, and idle keep-alive time"},
    {"WRITE_TIMEOUT_SECONDS", SETTING_INT, offsetof(struct config, write_timeout_seconds), "60", 1,
     86400, NULL, "a stream whose client accepts no bytes for this long is closed"},
    {"SESSION_BUFFER_SOFT_BYTES", SETTING_BYTES, offsetof(struct config, session_buffer_soft_bytes),
     "1m", 4 * KIB, GIB, NULL,
     "pending output above this for SESSION_BUFFER_SOFT_SECONDS closes a stream"},
    {"SESSION_BUFFER_SOFT_SECONDS", SETTING_INT,
     offsetof(struct config, session_buffer_soft_seconds), "10", 1, 3600, NULL,
     "how long a stream may stay above the soft limit"},
    {"SESSION_BUFFER_HARD_BYTES", SETTING_BYTES, offsetof(struct config, session_buffer_hard_bytes),
     "8m", 4 * KIB, 16 * GIB, NULL, "pending output above this closes a stream at once"},
    {"SESSION_SOCKET_BUFFER_BYTES", SETTING_BYTES,
     offsetof(struct config, session_socket_buffer_bytes), "0", 0, 64 * MIB, NULL,
     "kernel send buffer of a stream's socket (0: the kernel's autotuning, up to tcp_wmem)"},
    {"HELD_EVENTS_MAX", SETTING_INT, offsetof(struct config, held_events_max), "10000", 16,
     10000000, NULL, "live events a stream holds while it catches up from the table"},
    {"REPLAY_POOL_SIZE", SETTING_INT, offsetof(struct config, replay_pool_size), "4", 1, 256, NULL,
     "PostgreSQL connections used for Last-Event-ID replay and catch-up"},
    {"REPLAY_PAGE_ROWS", SETTING_INT, offsetof(struct config, replay_page_rows), "1000", 1, 1000000,
     NULL, "most rows read per replay page"},
    {"REPLAY_PAGE_BYTES", SETTING_BYTES, offsetof(struct config, replay_page_bytes), "1m", KIB, GIB,
     NULL, "target size of a replay page; pages shrink when rows are large"},
    {"REPLAY_BUFFER_BYTES", SETTING_BYTES, offsetof(struct config, replay_buffer_bytes), "32m", KIB,
     64 * GIB, NULL,
     "replay pages buffered at once, all replays together (each page counts REPLAY_PAGE_BYTES); "
     "replays beyond wait"},
    {"REPLAY_IDLE_SECONDS", SETTING_INT, offsetof(struct config, replay_idle_seconds), "30", 0,
     86400, NULL, "an idle replay connection is closed after this long"},
    {"PG_RECONNECT_MIN_MS", SETTING_INT, offsetof(struct config, pg_reconnect_min_ms), "100", 1,
     3600000, NULL, "first delay before reconnecting to PostgreSQL"},
    {"PG_RECONNECT_MAX_MS", SETTING_INT, offsetof(struct config, pg_reconnect_max_ms), "5000", 1,
     3600000, NULL, "longest delay between reconnection attempts"},
    {"PG_PING_SECONDS", SETTING_INT, offsetof(struct config, pg_ping_seconds), "10", 1, 3600, NULL,
     "idle time after which the LISTEN connection is probed"},
    {"PG_PING_TIMEOUT_SECONDS", SETTING_INT, offsetof(struct config, pg_ping_timeout_seconds), "5",
     1, 3600, NULL, "a probe unanswered for this long drops the connection"},
    {"SHUTDOWN_SECONDS", SETTING_INT, offsetof(struct config, shutdown_seconds), "10", 0, 3600,
     NULL, "time streams get to finish after SIGTERM"},
    {"RETENTION_SECONDS", SETTING_INT, offsetof(struct config, retention_seconds), "0", 0,
     3153600000LL, NULL,
     "rows whose timestamp is older than this are deleted (one instance at a time); 0: keep all"},
    {"RETENTION_INTERVAL_SECONDS", SETTING_INT, offsetof(struct config, retention_interval_seconds),
     "60", 1, 86400, NULL, "time from the end of one retention run to the start of the next"},
    {"RETENTION_BATCH_ROWS", SETTING_INT, offsetof(struct config, retention_batch_rows), "5000", 1,
     1000000, NULL, "most rows one retention delete (one transaction) removes"},
    {"RETENTION_BATCH_PAUSE_MS", SETTING_INT, offsetof(struct config, retention_batch_pause_ms),
     "0", 0, 60000, NULL, "pause between two retention delete batches, to spare the database"},
    {"LOG_LEVEL", SETTING_CHOICE, offsetof(struct config, log_level), "info", 0, 0,
     log_level_choices, "debug, info, warn or error"},
    {"LOG_FORMAT", SETTING_CHOICE, offsetof(struct config, log_format), "logfmt", 0, 0,
     log_format_choices, "logfmt or json"},
    {"INGEST", SETTING_CHOICE, offsetof(struct config, ingest), "pg_notify", 0, 0, ingest_choices,
     "where live events come from: PostgreSQL notifications, or Debezium over NATS JetStream"},
    {"NATS_URL", SETTING_STRING, offsetof(struct config, nats_url), "nats://127.0.0.1:4222", 0, 0,
     NULL, "NATS server(s), comma-separated (INGEST=nats)"},
    {"NATS_SUBJECT", SETTING_STRING, offsetof(struct config, nats_subject), "piper.public.events",
     0, 0, NULL, "subject Debezium publishes the events table's changes on"},
    {"NATS_STREAM", SETTING_STRING, offsetof(struct config, nats_stream), "", 0, 0, NULL,
     "JetStream stream holding NATS_SUBJECT; empty: looked up by subject"},
    {"NATS_RECONNECT_MS", SETTING_INT, offsetof(struct config, nats_reconnect_ms), "500", 10, 60000,
     NULL, "delay between attempts to reconnect to NATS (forever)"},
    {"READY_MAX_INGEST_AGE_SECONDS", SETTING_INT,
     offsetof(struct config, ready_max_ingest_age_seconds), "0", 0, 86400, NULL,
     "/readyz answers 503 after this long without a NATS message or heartbeat (INGEST=nats); "
     "0: off"},
    {"CORS_ORIGINS", SETTING_STRING, offsetof(struct config, cors_origins), "", 0, 0, NULL,
     "origins allowed to read streams from a browser, comma-separated, or *; empty: none"},
    {"JWT_HS256_SECRET", SETTING_STRING, offsetof(struct config, jwt_hs256_secret), "", 0, 0, NULL,
     "shared secret (32+ bytes) for HS256 tokens; setting it turns authentication on"},
    {"JWT_RS256_PUBLIC_KEY_FILE", SETTING_STRING,
     offsetof(struct config, jwt_rs256_public_key_file), "", 0, 0, NULL,
     "PEM public key for RS256 tokens; setting it turns authentication on"},
    {"JWT_CONSUMER_CLAIM", SETTING_STRING, offsetof(struct config, jwt_consumer_claim), "sub", 0, 0,
     NULL, "token claim holding the consumer id"},
    {"JWT_AUDIENCE", SETTING_STRING, offsetof(struct config, jwt_audience), "", 0, 0, NULL,
     "when set, a token's aud must name it"},
    {"JWT_ISSUER", SETTING_STRING, offsetof(struct config, jwt_issuer), "", 0, 0, NULL,
     "when set, a token's iss must equal it"},
    {"JWT_ALLOW_NO_EXP", SETTING_INT, offsetof(struct config, jwt_allow_no_exp), "0", 0, 1, NULL,
     "1 accepts tokens without exp (they never expire); 0 refuses them"},
    {"JWT_LEEWAY_SECONDS", SETTING_INT, offsetof(struct config, jwt_leeway_seconds), "30", 0, 300,
     NULL, "clock skew forgiven when checking exp, nbf and iat"},
    {"TOKEN_TTL_SECONDS", SETTING_INT, offsetof(struct config, token_ttl_seconds), "30", 1, 86400,
     NULL, "lifetime of the tokens POST /auth/token issues (HS256, needs JWT_HS256_SECRET)"},
    {"API_KEYS_FILE", SETTING_STRING, offsetof(struct config, api_keys_file), "", 0, 0, NULL,
     "file of 'sk_... consumer-id' lines; setting it turns authentication on"},
    {"METRICS_TOKEN", SETTING_STRING, offsetof(struct config, metrics_token), "", 0, 0, NULL,
     "when set, GET /metrics needs Authorization: Bearer <this token>"},
    {"DEMO", SETTING_INT, offsetof(struct config, demo), "0", 0, 1, NULL,
     "1 serves the demo page at / and enables POST /demo/events, which inserts test events "
     "(never in production)"},
    {"DEMO_DIR", SETTING_STRING, offsetof(struct config, demo_dir), "examples/demo", 0, 0, NULL,
     "directory of the demo page served at /"},
};

#define SETTINGS_COUNT (sizeof(settings) / sizeof(settings[0]))

static void flag_name(const struct setting *s, char *out, size_t size)
{
    size_t i = 0;
    out[i++] = '-';
    out[i++] = '-';
    for (const char *p = s->env; *p != '\0' && i + 1 < size; p++)
        out[i++] = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
    out[i] = '\0';
}

static bool parse_integer(const char *text, long long *out)
{
    int64_t v = 0;
    if (!parse_int64(text, strlen(text), INT64_MIN, INT64_MAX, &v))
        return false;
    *out = v;
    return true;
}

/* Accepts plain bytes or a k/m/g suffix (powers of 1024). */
static bool parse_bytes(const char *text, long long *out)
{
    const char *end = text;
    while (isdigit((unsigned char)*end))
        end++;
    int64_t v = 0;
    if (!parse_int64(text, (size_t)(end - text), 0, INT64_MAX, &v))
        return false;
    long long unit = 1;
    switch (tolower((unsigned char)*end)) {
    case '\0':
        break;
    case 'k':
        unit = KIB;
        break;
    case 'm':
        unit = MIB;
        break;
    case 'g':
        unit = GIB;
        break;
    default:
        return false;
    }
    if (*end != '\0' && end[1] != '\0' &&
        !(tolower((unsigned char)end[1]) == 'b' && end[2] == '\0'))
        return false;
    if (v > INT64_MAX / unit)
        return false;
    *out = v * unit;
    return true;
}

static bool apply_setting(struct config *cfg, const struct setting *s, const char *text, FILE *err)
{
    char *field = (char *)cfg + s->offset;
    long long v = 0;

    switch (s->type) {
    case SETTING_STRING: {
        char *copy = strdup(text);
        if (copy == NULL) {
            fprintf(err, "event-piper: out of memory reading %s\n", s->env);
            return false;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return true;
    }
    case SETTING_CHOICE:
        for (long long i = 0; s->choices[i] != NULL; i++) {
            if (strcmp(text, s->choices[i]) == 0) {
                *(long long *)field = i;
                return true;
            }
        }
        fprintf(err, "event-piper: invalid %s '%s': expected one of", s->env, text);
        for (size_t i = 0; s->choices[i] != NULL; i++)
            fprintf(err, "%s %s", i == 0 ? "" : ",", s->choices[i]);
        fprintf(err, "\n");
        return false;
    case SETTING_INT:
        if (!parse_integer(text, &v) || v < s->min || v > s->max) {
            fprintf(err, "event-piper: invalid %s '%s': expected an integer from %lld to %lld\n",
                    s->env, text, s->min, s->max);
            return false;
        }
        *(long long *)field = v;
        return true;
    case SETTING_BYTES:
        if (!parse_bytes(text, &v) || v < s->min || v > s->max) {
            fprintf(err,
                    "event-piper: invalid %s '%s': expected a size from %lld to %lld bytes "
                    "(suffix k, m or g allowed)\n",
                    s->env, text, s->min, s->max);
            return false;
        }
        *(long long *)field = v;
        return true;
    }
    return false;
}

static const struct setting *find_flag(const char *arg, size_t len)
{
    char name[64];
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        flag_name(&settings[i], name, sizeof(name));
        if (strlen(name) == len && strncmp(arg, name, len) == 0)
            return &settings[i];
    }
    return NULL;
}

static void print_help(FILE *out)
{
    char name[64];
    fprintf(out,
            "event-piper %s: PostgreSQL events to Server-Sent Events streams\n\n"
            "usage: event-piper [--SETTING=value ...]\n\n"
            "Every setting is an environment variable and a flag; a flag wins.\n\n",
            PIPER_VERSION);
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const struct setting *s = &settings[i];
        flag_name(s, name, sizeof(name));
        fprintf(out, "  %-28s %s\n  %-28s   %s (default: %s)\n", s->env, name, "", s->help,
                *s->default_value != '\0' ? s->default_value : "empty");
    }
    fprintf(out, "\n  --help, --version\n");
}

static bool check_relations(const struct config *cfg, FILE *err)
{
    if (cfg->session_buffer_soft_bytes > cfg->session_buffer_hard_bytes) {
        fprintf(err,
                "event-piper: invalid SESSION_BUFFER_SOFT_BYTES %lld: above "
                "SESSION_BUFFER_HARD_BYTES %lld\n",
                cfg->session_buffer_soft_bytes, cfg->session_buffer_hard_bytes);
        return false;
    }
    if ((cfg->tls_cert_file[0] == '\0') != (cfg->tls_key_file[0] == '\0')) {
        fprintf(err, "event-piper: invalid TLS_CERT_FILE/TLS_KEY_FILE: set both or neither\n");
        return false;
    }
    if (cfg->ready_max_ingest_age_seconds > 0 && cfg->ingest != INGEST_NATS) {
        fprintf(err, "event-piper: invalid READY_MAX_INGEST_AGE_SECONDS %lld: needs INGEST=nats\n",
                cfg->ready_max_ingest_age_seconds);
        return false;
    }
    if (cfg->pg_reconnect_min_ms > cfg->pg_reconnect_max_ms) {
        fprintf(err,
                "event-piper: invalid PG_RECONNECT_MIN_MS %lld: above PG_RECONNECT_MAX_MS "
                "%lld\n",
                cfg->pg_reconnect_min_ms, cfg->pg_reconnect_max_ms);
        return false;
    }
    return true;
}

enum config_result config_load(struct config *cfg, int argc, char **argv,
                               const char *(*getenv_fn)(const char *), FILE *out, FILE *err)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        if (!apply_setting(cfg, &settings[i], settings[i].default_value, err))
            goto invalid;
    }
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const char *value = getenv_fn(settings[i].env);
        if (value != NULL && !apply_setting(cfg, &settings[i], value, err))
            goto invalid;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help(out);
            config_free(cfg);
            return CONFIG_EXIT_SUCCESS;
        }
        if (strcmp(arg, "--version") == 0) {
            fprintf(out, "event-piper %s\n", PIPER_VERSION);
            config_free(cfg);
            return CONFIG_EXIT_SUCCESS;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        const struct setting *s = find_flag(arg, name_len);
        if (s == NULL) {
            fprintf(err, "event-piper: unknown option '%.*s' (see --help)\n", (int)name_len, arg);
            goto invalid;
        }
        const char *value = eq != NULL ? eq + 1 : NULL;
        if (value == NULL) {
            if (i + 1 >= argc) {
                fprintf(err, "event-piper: option '%s' (%s) needs a value\n", arg, s->env);
                goto invalid;
            }
            value = argv[++i];
        }
        if (!apply_setting(cfg, s, value, err))
            goto invalid;
    }
    if (!check_relations(cfg, err))
        goto invalid;
    if (cfg->max_connections == 0)
        cfg->max_connections = cfg->max_sessions + 1000;
    return CONFIG_OK;

invalid:
    config_free(cfg);
    return CONFIG_INVALID;
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        if (settings[i].type == SETTING_STRING) {
            char **field = (char **)((char *)cfg + settings[i].offset);
            free(*field);
            *field = NULL;
        }
    }
}

/* Keywords whose values are secrets, in libpq's keyword form and in URI
 * query parameters alike. */
static const char *const secret_keywords[] = {"password", "sslpassword"};

/* If p starts a secret keyword (at the start of a pair: after whitespace,
 * '?' or '&') followed by '=', returns where its value starts and sets
 * *name; otherwise NULL. */
static const char *secret_value(const char *conninfo, const char *p, const char **name)
{
    if (p != conninfo && !isspace((unsigned char)p[-1]) && p[-1] != '?' && p[-1] != '&')
        return NULL;
    for (size_t i = 0; i < sizeof(secret_keywords) / sizeof(secret_keywords[0]); i++) {
        size_t len = strlen(secret_keywords[i]);
        if (strncmp(p, secret_keywords[i], len) != 0)
            continue;
        const char *q = p + len;
        while (isspace((unsigned char)*q))
            q++;
        if (*q != '=')
            continue;
        q++;
        while (isspace((unsigned char)*q))
            q++;
        *name = secret_keywords[i];
        return q;
    }
    return NULL;
}

/* Appends text to out, truncating; returns the new length. */
static size_t append(char *out, size_t size, size_t o, const char *text, size_t len)
{
    while (len-- > 0 && o + 1 < size)
        out[o++] = *text++;
    return o;
}

void config_mask_conninfo(const char *conninfo, char *out, size_t size)
{
    size_t o = 0;
    const char *p = conninfo;
    if (size == 0)
        return;
    while (*p != '\0' && o + 1 < size) {
        /* URI form: scheme://user:secret@host keeps the user; a user
         * part without ':' is a token (nats://token@host) and goes whole.
         * A PostgreSQL URI's bare user name is no secret and stays. */
        if (strncmp(p, "://", 3) == 0) {
            const char *user = p + 3;
            size_t span = strcspn(user, "@/?, \t");
            if (user[span] == '@') {
                const char *colon = memchr(user, ':', span);
                bool postgres = (p - conninfo >= 8 && strncmp(p - 8, "postgres", 8) == 0) ||
                                (p - conninfo >= 10 && strncmp(p - 10, "postgresql", 10) == 0);
                if (colon != NULL) {
                    o = append(out, size, o, p, (size_t)(colon + 1 - p));
                    o = append(out, size, o, "***", 3);
                    p = user + span;
                    continue;
                }
                if (!postgres) {
                    o = append(out, size, o, "://***", 6);
                    p = user + span;
                    continue;
                }
            }
        }
        /* keyword form: password=secret, password = 'se cret' (libpq allows
         * any whitespace around '=' and between pairs) */
        const char *name = NULL;
        const char *value = secret_value(conninfo, p, &name);
        if (value != NULL) {
            o = append(out, size, o, name, strlen(name));
            o = append(out, size, o, "=***", 4);
            p = value;
            if (*p == '\'') {
                p++;
                while (*p != '\0' && *p != '\'')
                    p += (*p == '\\' && p[1] != '\0') ? 2 : 1;
                if (*p == '\'')
                    p++;
            } else {
                while (*p != '\0' && !isspace((unsigned char)*p) && *p != '&')
                    p++;
            }
            continue;
        }
        out[o++] = *p++;
    }
    if (o >= size)
        o = size - 1;
    out[o] = '\0';
}

void config_log(const struct config *cfg)
{
    char masked[512];
    config_mask_conninfo(cfg->database_url, masked, sizeof(masked));
    log_info("configuration",
             "version=%s database_url=%s bind_address=%s port=%lld heartbeat_seconds=%lld "
             "max_sessions=%lld replay_pool_size=%lld replay_page_rows=%lld ingest=%s "
             "cors_origins=%s auth_hs256=%d auth_rs256=%d api_keys=%d demo=%lld",
             PIPER_VERSION, masked, cfg->bind_address, cfg->port, cfg->heartbeat_seconds,
             cfg->max_sessions, cfg->replay_pool_size, cfg->replay_page_rows,
             ingest_choices[cfg->ingest], cfg->cors_origins, cfg->jwt_hs256_secret[0] != '\0',
             cfg->jwt_rs256_public_key_file[0] != '\0', cfg->api_keys_file[0] != '\0', cfg->demo);
    if (cfg->ingest != INGEST_NATS)
        return;
    config_mask_conninfo(cfg->nats_url, masked, sizeof(masked));
    log_info("nats ingest",
             "nats_url=%s nats_subject=%s nats_stream=%s ready_max_ingest_age_seconds=%lld", masked,
             cfg->nats_subject, cfg->nats_stream, cfg->ready_max_ingest_age_seconds);
}
