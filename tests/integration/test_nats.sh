#!/usr/bin/env bash
# INGEST=nats: Debezium-shaped change events from a real nats-server with
# JetStream, replay from a real PostgreSQL. nats-publish plays Debezium
# Server: every row inserted into the table is published as a change event
# built from the row itself, so the table and the stream agree.
#
# Checked: streams get exactly their consumer's events, in order, while
# duplicates (at-least-once), malformed messages, updates, deletes and
# tombstones are mixed in; a nats-server restart mid-stream loses nothing
# JetStream stored and closes no stream; a stream resuming with
# Last-Event-ID reads the table and then continues on NATS without gap or
# duplicate; PostgreSQL is only used for replay.
#
# Debezium's other subjects, in a stream that holds them as Debezium's own
# does (piper.> and __debezium-heartbeat.piper): heartbeats (real, plain, one
# malformed) are taken by instance a (NATS_SUBJECT the table's subject) and
# w (NATS_SUBJECT piper.>) alike, before and after the nats-server restart;
# transaction metadata on piper.transaction reaches w only, and is skipped
# without a word; neither is a bad message. Instance s checks
# READY_MAX_INGEST_AGE_SECONDS: /readyz 503 with its reason when nothing
# came for that long, 200 after a heartbeat.
source "$(dirname "$0")/../lib.sh"

NATS_PUBLISH="$ROOT/build/tools/nats-publish"
SUBJECT=piper.public.events
command -v nats-server >/dev/null || fail "nats-server is not installed (make test-deps)"

NATS_PORT=$(free_port)
NATS_MONITOR_PORT=$(free_port)
NATS_URL="nats://127.0.0.1:$NATS_PORT"
NATS_PID=""
nats_start() {
    nats-server -js -sd "$WORK/jetstream" -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" \
        >>"$ARTIFACTS/$TEST_NAME.nats-server.log" 2>&1 &
    NATS_PID=$!
    BACKGROUND_PIDS+=("$NATS_PID")
    wait_port "$NATS_PORT" 10 "nats-server to listen"
}
nats_stop() { stop_quietly "$NATS_PID"; }
publish() { # messages on stdin
    "$NATS_PUBLISH" --url "$NATS_URL" --subject "$SUBJECT" --timeout 30 "$@"
}
publish_on() { # subject; messages on stdin
    "$NATS_PUBLISH" --url "$NATS_URL" --subject "$1" --timeout 30
}
FIXTURES="$ROOT/tests/fixtures/debezium"
HEARTBEATS=__debezium-heartbeat.piper

# The change event Debezium would publish for each row with id in (from, to],
# one per line: plain envelopes for even ids, schema-wrapped for odd ones.
change_events() { # from to [op]
    local op=${3:-c}
    sql "select case when id % 2 = 0 then e::text
                     else json_build_object('schema', json_build_object('type', 'struct',
                          'optional', false, 'name', 'piper.public.events.Envelope'),
                          'payload', e)::text end
         from (select id, json_build_object(
                 'before', null,
                 'after', json_build_object('id', id, 'type', type,
                     'timestamp', to_char(timestamp at time zone 'UTC',
                                          'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                     'subscriber', subscriber, 'payload', payload::text),
                 'source', json_build_object('version', '2.7.3.Final', 'connector', 'postgresql',
                     'name', 'piper', 'ts_ms', 0, 'snapshot', 'false', 'db', 'event_piper',
                     'schema', 'public', 'table', 'events', 'txId', 1, 'lsn', id),
                 'op', '$op', 'ts_ms', 0) as e
               from events where id > $1 and id <= $2 order by id) rows"
}

insert_round() { # round rows-per-consumer: inserts in one transaction, prints the max id
    sql "insert into events (type, subscriber, payload)
         select 'round$1', 'c' || c, json_build_object('round', $1, 'i', i, 'note', 'café \"q\"')
         from generate_series(1, $2) i, generate_series(1, 4) c order by i, c;
         select max(id) from events" | tail -n 1
}

metric() { # name{labels} [instance] -> value
    piper_metrics "${2:-a}" | awk -v m="$1" '$1 == m { print $2 }'
}
readyz() { # instance -> status code and body
    curl -s -w ' %{http_code}' "$(piper_url "$1" /readyz)"
}

pg_start
nats_start
publish --create-stream PIPER --stream-subjects "piper.>,$HEARTBEATS" </dev/null

# History published before the service starts must not reach fresh streams.
sql "insert into events (type, subscriber, payload) values ('old', 'c1', '{\"old\": true}')" >/dev/null
change_events 0 1 | publish

piper_start a INGEST=nats NATS_URL="$NATS_URL" NATS_RECONNECT_MS=100 HEARTBEAT_SECONDS=1 \
    REPLAY_IDLE_SECONDS=1
piper_wait_ready a
port=$(piper_port a)
piper_start w INGEST=nats NATS_URL="$NATS_URL" NATS_SUBJECT='piper.>' NATS_STREAM=PIPER \
    NATS_RECONNECT_MS=100 REPLAY_IDLE_SECONDS=1
piper_wait_ready w

mkdir -p "$WORK/fresh" "$WORK/resume"
background "$SSE_CLIENT" --port "$port" --consumers c1,c2,c3,c4 --sessions 8 --count 30 \
    --timeout 30 --out "$WORK/fresh" 2>"$ARTIFACTS/$TEST_NAME.fresh.log"
fresh=$LAST_PID
wait_log a 'msg="session opened"' 10 0 8

# Round 1, published twice (Debezium republishes after its own restarts),
# with messages that make no event mixed in.
r1=$(insert_round 1 10)
{
    change_events 1 "$r1"
    echo '{"op": "c", "after": {"id": 3, "type": "x", "subscriber": "c1", "payload": "{trunc'
    echo '{"op":"c","after":{"id":"7","type":"x","subscriber":"c1","payload":"{}"}}'
    echo '{"op":"c","before":null,"source":{}}'
    echo ''
    change_events 1 2 u | head -n 1
    # Forged: anyone allowed to publish on the subject could send these. A
    # huge id that is not in the table, and a real row's id with a made-up
    # subscriber and payload: only the table's row may ever be delivered.
    echo '{"op":"c","after":{"id":9223372036854775806,"type":"x","subscriber":"c1","timestamp":"2026-01-01T00:00:00.000000Z","payload":"{\"forged\":1}"}}'
    printf '{"op":"c","after":{"id":%s,"type":"x","subscriber":"c1","timestamp":"2026-01-01T00:00:00.000000Z","payload":"{\\"forged\\":2}"}}\n' "$r1"
    change_events 1 "$r1"
} | publish
change_events 2 3 | sed 's/"op" : "c"/"op" : "d"/' | publish
{
    cat "$FIXTURES/heartbeat.json"
    echo
    echo '{"ts_ms": 1796460507084}'
    echo '{"op": "c", "after": null}' # not a heartbeat: a bad message
} | publish_on "$HEARTBEATS"
{
    cat "$FIXTURES/transaction_begin.json"
    echo
    cat "$FIXTURES/transaction_end.json"
    echo
} | publish_on piper.transaction

# nats-server restart mid-stream: rows committed meanwhile are published as
# soon as it is back (the publisher retries), and must all arrive.
nats_stop
wait_http_status "$(piper_url a /readyz)" 503 10 "/readyz 503 while NATS is down"
r2=$(insert_round 2 10)
change_events "$r1" "$r2" >"$WORK/round2"
# Not through background(): an asynchronous command's stdin would be /dev/null.
"$NATS_PUBLISH" --url "$NATS_URL" --subject "$SUBJECT" --timeout 30 <"$WORK/round2" \
    2>"$WORK/publisher.err" &
publisher=$!
BACKGROUND_PIDS+=("$publisher")
# NATS comes back once the publisher found it down and is retrying.
wait_file_lines "$WORK/publisher.err" "no server at .*; retrying" 1 10 "the publisher to find NATS down"
nats_start
wait "$publisher" || { cat "$WORK/publisher.err" >&2; fail "publishing during the restart failed"; }
wait_http_status "$(piper_url a /readyz)" 200 20 "/readyz 200 after NATS is back"
kill -0 "$fresh" || fail "a stream ended during the NATS restart"
# Heartbeats are read with a plain subscription: it must outlive the restart.
piper_wait_ready w
echo '{"ts_ms": 1796460508084}' | publish_on "$HEARTBEATS"
for i in a w; do
    wait_for "$i to take the heartbeat sent after the restart" 10 \
        sh -c "curl -s '$(piper_url $i /metrics)' | grep -qx 'event_piper_ingest_heartbeats_total 3'"
done
age=$(metric event_piper_ingest_last_message_age_seconds)
awk -v a="$age" 'BEGIN { exit !(a >= 0 && a < 10) }' || fail "message age $age after a heartbeat"

# A stream resuming from the middle of round 1: the table, then NATS.
resume_from=$(sql "select id from events where subscriber = 'c1' and type = 'round1' order by id offset 4 limit 1")
background "$SSE_CLIENT" --port "$port" --consumer c1 --last-event-id "$resume_from" --count 25 \
    --timeout 30 --out "$WORK/resume" 2>"$ARTIFACTS/$TEST_NAME.resume.log"
resumer=$LAST_PID
wait_for "the resumed stream to read round 2 from the table" 20 \
    sh -c "[ \$(cat '$WORK/resume/0.events' 2>/dev/null | wc -l) -ge 15 ]"
r3=$(insert_round 3 10)
change_events "$r2" "$r3" >"$WORK/round3"
publish <"$WORK/round3"

if ! wait "$fresh"; then
    curl -s "$(piper_url a /metrics)" | grep -E '^event_piper_(events|listener)' >&2
    curl -s "http://127.0.0.1:$NATS_MONITOR_PORT/jsz?streams=1&consumers=1" >&2
    fail "fresh streams did not get all 30 events each (see $TEST_NAME.fresh.log)"
fi
wait "$resumer" || fail "the resumed stream did not get its 25 events"

for i in 0 1 2 3 4 5 6 7; do
    c=c$((i % 4 + 1))
    sql "select id from events where subscriber = '$c' and type like 'round%' order by id" >"$WORK/expected"
    cut -f1 "$WORK/fresh/$i.events" >"$WORK/got"
    assert_file_eq "$WORK/expected" "$WORK/got" "fresh stream $i ($c)"
done
sql "select id from events where subscriber = 'c1' and id > $resume_from order by id" >"$WORK/expected"
cut -f1 "$WORK/resume/0.events" >"$WORK/got"
assert_file_eq "$WORK/expected" "$WORK/got" "resumed stream"
first_line=$(head -n 1 "$WORK/fresh/0.events")
assert_eq "$(sql "select min(id) from events where subscriber = 'c1' and type = 'round1'")	round1	{\"i\":1,\"note\":\"café \\\\\"q\\\\\"\",\"round\":1}" \
    "$first_line" "payload re-encoded compactly, unicode kept"

assert_eq 4 "$(metric 'event_piper_events_invalid_total{reason="bad_message"}')" "malformed messages counted"
assert_eq 1 "$(metric 'event_piper_events_invalid_total{reason="missing_row"}')" "forged id not in the table"
grep -q forged "$WORK"/fresh/*.events "$WORK/resume/0.events" && fail "a forged payload was delivered"
assert_eq 3 "$(metric event_piper_events_ignored_total)" "update, delete and tombstone ignored"
[ "$(metric event_piper_listener_reconnects_total)" -ge 1 ] || fail "the NATS reconnect was not counted"
grep -q "msg=\"change event skipped\" subject=$SUBJECT seq=[0-9]* reason=" "$(piper_log a)" ||
    fail "no log line names a malformed message's subject, sequence and cause"

# Debezium's other subjects: understood, counted apart, never bad messages.
assert_eq 3 "$(metric event_piper_ingest_heartbeats_total)" "heartbeats taken by a"
assert_eq 0 "$(metric event_piper_ingest_transaction_messages_total)" "a's subject holds no transaction metadata"
assert_eq 3 "$(metric event_piper_ingest_heartbeats_total w)" "heartbeats taken by w"
assert_eq 2 "$(metric event_piper_ingest_transaction_messages_total w)" "transaction metadata skipped by w"
assert_eq 4 "$(metric 'event_piper_events_invalid_total{reason="bad_message"}' w)" "w: malformed messages counted"
assert_eq 3 "$(metric event_piper_events_ignored_total w)" "w: update, delete and tombstone ignored"
assert_eq "$(metric event_piper_events_received_total)" "$(metric event_piper_events_received_total w)" \
    "a and w received the same change events"
for i in a w; do
    [ "$(grep -c 'msg="change event skipped"' "$(piper_log $i)")" = 4 ] || fail "$i: not 4 skipped messages logged"
    grep -q "msg=\"change event skipped\" subject=$HEARTBEATS seq=0 reason=\"not a heartbeat\"" "$(piper_log $i)" ||
        fail "$i: the malformed heartbeat is not logged with its subject and cause"
done
grep -q 'subject=piper.transaction' "$(piper_log w)" && fail "w logged a transaction message"

# In NATS mode PostgreSQL serves replay only: nothing is left once idle.
wait_for "replay connections to close" 10 sh -c "[ \$(psql '$DATABASE_URL' -X -t -A -c \"select count(*) from pg_stat_activity where application_name like 'event-piper%'\") = 0 ]"

piper_stop a
piper_stop w

# READY_MAX_INGEST_AGE_SECONDS: nothing for 2 s is not ready, whatever the
# connection says; a heartbeat makes it ready until 2 s have passed again.
piper_start s INGEST=nats NATS_URL="$NATS_URL" READY_MAX_INGEST_AGE_SECONDS=2 REPLAY_IDLE_SECONDS=1
stale_reason='no NATS message or heartbeat within READY_MAX_INGEST_AGE_SECONDS'
wait_for "/readyz 503 without messages" 20 sh -c "curl -s '$(piper_url s /readyz)' | grep -q '$stale_reason'"
assert_contains "$(readyz s)" " 503" "/readyz without messages for 2 s"
echo '{"ts_ms": 1796460509084}' | publish_on "$HEARTBEATS"
wait_for "/readyz 200 after a heartbeat" 10 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' '$(piper_url s /readyz)') = 200 ]"
assert_eq 1 "$(metric event_piper_ingest_heartbeats_total s)" "the heartbeat counted by s"
wait_for "/readyz 503 2 s after the heartbeat" 10 sh -c "curl -s '$(piper_url s /readyz)' | grep -q '$stale_reason'"
piper_stop s
test_done
