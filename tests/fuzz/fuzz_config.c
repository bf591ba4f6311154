/*
 * Settings (ops/config.c): the environment and command line an operator or
 * an orchestrator hands the service. The input is lines: "NAME=value" lines
 * make the environment, every other line is one argv entry. Loading must
 * never crash or leak; an accepted configuration keeps the relations
 * config_load checks; the conninfo mask keeps its output NUL-terminated and
 * never longer than asked.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 64

static char *env_names[MAX_ENTRIES];
static char *env_values[MAX_ENTRIES];
static size_t env_count;

static const char *fuzz_getenv(const char *name)
{
    /* The last definition wins, as with setenv. */
    for (size_t i = env_count; i-- > 0;) {
        if (strcmp(env_names[i], name) == 0)
            return env_values[i];
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (sink == NULL && (sink = fopen("/dev/null", "w")) == NULL)
        abort();
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    char *argv[MAX_ENTRIES + 1];
    int argc = 0;
    argv[argc++] = "event-piper";
    env_count = 0;
    for (char *next = text, *line; (line = strsep(&next, "\n")) != NULL;) {
        char *eq = strchr(line, '=');
        if (line[0] != '-' && eq != NULL && env_count < MAX_ENTRIES) {
            *eq = '\0';
            env_names[env_count] = line;
            env_values[env_count++] = eq + 1;
        } else if (argc < MAX_ENTRIES) {
            argv[argc++] = line;
        }
    }
    argv[argc] = NULL;

    struct config cfg;
    enum config_result r = config_load(&cfg, argc, argv, fuzz_getenv, sink, sink);
    if (r == CONFIG_OK) {
        if (cfg.session_buffer_soft_bytes > cfg.session_buffer_hard_bytes ||
            cfg.pg_reconnect_min_ms > cfg.pg_reconnect_max_ms || cfg.max_connections <= 0 ||
            cfg.port < 1 || cfg.port > 65535 || cfg.database_url == NULL)
            abort();
        char masked[256];
        memset(masked, 'x', sizeof(masked));
        config_mask_conninfo(cfg.database_url, masked, sizeof(masked));
        if (memchr(masked, '\0', sizeof(masked)) == NULL)
            abort();
        config_free(&cfg);
    }
    /* The whole input as a conninfo too, into a small buffer. */
    char small[16];
    config_mask_conninfo(text[0] != '\0' ? text : "password=x", small, sizeof(small));
    if (memchr(small, '\0', sizeof(small)) == NULL)
        abort();
    free(text);
    return 0;
}
