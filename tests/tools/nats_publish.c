/*
 * nats-publish: publishes stdin, one message per line, to a JetStream subject
 * and waits for each acknowledgement, the way Debezium Server's NATS
 * JetStream sink does. Used by the integration tests to play Debezium.
 *
 *   nats-publish --url nats://127.0.0.1:4222 --subject piper.public.events \
 *                [--create-stream NAME [--stream-subjects A,B,...]] \
 *                [--timeout SECONDS] < messages
 *
 * --create-stream makes a file stream over --stream-subjects (default: the
 * subject), as Debezium's create-stream does over its subjects setting.
 *
 * An empty line publishes an empty message (a tombstone). A publish that
 * fails because the server is away is retried until --timeout, so a test can
 * restart nats-server under a running publisher. Exit status: 0 all
 * acknowledged, 1 failure, 64 usage.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

struct publisher {
    const char *url;
    const char *subject;
    const char *create_stream;
    const char *stream_subjects; /* comma-separated; NULL: subject */
    double timeout_seconds;
    natsConnection *conn;
    jsCtx *js;
};

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(stderr, "usage: nats-publish --url URL --subject SUBJECT [--create-stream NAME "
                    "[--stream-subjects A,B,...]] [--timeout SECONDS] < messages\n");
    return 64;
}

static bool parse_args(struct publisher *p, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (i + 1 >= argc)
            return false;
        const char *value = argv[++i];
        if (strcmp(arg, "--url") == 0)
            p->url = value;
        else if (strcmp(arg, "--subject") == 0)
            p->subject = value;
        else if (strcmp(arg, "--create-stream") == 0)
            p->create_stream = value;
        else if (strcmp(arg, "--stream-subjects") == 0)
            p->stream_subjects = value;
        else if (strcmp(arg, "--timeout") == 0)
            p->timeout_seconds = atof(value);
        else
            return false;
    }
    return p->url != NULL && p->subject != NULL && p->timeout_seconds > 0;
}

static bool connect_to(struct publisher *p)
{
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, p->url);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 100);
    if (s == NATS_OK)
        s = natsConnection_Connect(&p->conn, opts);
    /* The server may be restarting: say so (a test waits for this line before
     * it starts the server), then wait for it (bounded by the test). */
    if (s == NATS_NO_SERVER) {
        fprintf(stderr, "nats-publish: no server at %s yet; retrying\n", p->url);
        s = natsOptions_SetRetryOnFailedConnect(opts, true, NULL, NULL);
        if (s == NATS_OK)
            s = natsConnection_Connect(&p->conn, opts);
    }
    if (s == NATS_OK)
        s = natsConnection_JetStream(&p->js, p->conn, NULL);
    natsOptions_Destroy(opts);
    if (s != NATS_OK)
        fprintf(stderr, "nats-publish: cannot connect to %s: %s\n", p->url, natsStatus_GetText(s));
    return s == NATS_OK;
}

static bool create_stream(struct publisher *p)
{
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = p->create_stream;
    const char *subjects[16];
    int count = 0;
    char *list = strdup(p->stream_subjects != NULL ? p->stream_subjects : p->subject);
    if (list == NULL)
        return false;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t != NULL && count < 16;
         t = strtok_r(NULL, ",", &save))
        subjects[count++] = t;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = count;
    cfg.Storage = js_FileStorage;
    jsStreamInfo *info = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddStream(&info, p->js, &cfg, NULL, &jerr);
    free(list);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(info);
        return true;
    }
    if (jerr == JSStreamNameExistErr)
        return true;
    fprintf(stderr, "nats-publish: cannot create stream %s: %s (%d)\n", p->create_stream,
            natsStatus_GetText(s), (int)jerr);
    return false;
}

/* Retries until acknowledged: the server may be restarting. */
static bool publish(struct publisher *p, const char *data, size_t len, double deadline)
{
    for (;;) {
        jsPubAck *ack = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_Publish(&ack, p->js, p->subject, data, (int)len, NULL, &jerr);
        if (s == NATS_OK) {
            jsPubAck_Destroy(ack);
            return true;
        }
        if (monotonic_seconds() > deadline) {
            fprintf(stderr, "nats-publish: publish failed: %s (%d)\n", natsStatus_GetText(s),
                    (int)jerr);
            return false;
        }
        nats_Sleep(100);
    }
}

static bool publish_lines(struct publisher *p)
{
    char *line = NULL;
    size_t capacity = 0;
    ssize_t len;
    double deadline = monotonic_seconds() + p->timeout_seconds;
    bool ok = true;
    while (ok && (len = getline(&line, &capacity, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        ok = publish(p, line, (size_t)len, deadline);
    }
    free(line);
    return ok;
}

int main(int argc, char **argv)
{
    struct publisher p = {.timeout_seconds = 30};
    if (!parse_args(&p, argc, argv))
        return usage();
    bool ok = connect_to(&p) && (p.create_stream == NULL || create_stream(&p)) && publish_lines(&p);
    jsCtx_Destroy(p.js);
    if (p.conn != NULL) {
        natsConnection_Close(p.conn);
        natsConnection_Destroy(p.conn);
    }
    nats_CloseAndWait(2000);
    return ok ? 0 : 1;
}
