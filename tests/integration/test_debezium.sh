#!/usr/bin/env bash
# INGEST=nats against the real thing: Debezium Server 2.7.3.Final
# (tests/tools/debezium-server, configured from
# examples/debezium/application.properties), a real nats-server with
# JetStream (examples/debezium/nats-server.conf: max_payload 8MB), a
# PostgreSQL 15 with wal_level=logical, and the service reading
# DebeziumStream / piper.public.events.
#
# Checked:
#   - inserts become events on their consumer's streams, exactly (id, type,
#     compact payload), a 1.5 MB payload and unicode included; updates and
#     deletes make none (counted as ignored);
#   - nats-server is killed while rows are being inserted: Debezium exits
#     (its sink never reconnects), and so does a Debezium started while NATS
#     is still down; the service keeps every stream open and reports not
#     ready; once nats-server and Debezium are started again, the streams
#     resume and end up with every row, once, in order;
#   - rows Debezium's JSON cannot carry as C numbers (a 30-digit integer,
#     1e400) or dates ('infinity') are delivered exactly: a message is only a
#     hint, the row is read back from the table;
#   - Debezium's heartbeats (__debezium-heartbeat.piper, every second) keep
#     an instance with READY_MAX_INGEST_AGE_SECONDS ready while the table is
#     quiet, and a stopped Debezium makes it answer /readyz 503 until
#     Debezium is back.
#
# Skips (exit 0, "SKIP") only when the distribution cannot be downloaded.
# What this run saw (exit statuses, timings) is logged as "observed:" lines.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/integration/lib_debezium.sh"

SUBJECT=piper.public.events
command -v nats-server >/dev/null || fail "nats-server is not installed (make test-deps)"

# Debezium ignores properties it does not know, so a sink setting from a later
# version (stream-name, 3.5) would be dropped without a word. These are all
# the 2.7.3 sink reads (NatsJetStreamChangeConsumer.java).
sed -n 's/^debezium\.sink\.nats-jetstream\.\([^=]*\)=.*/\1/p' "$DEBEZIUM_EXAMPLE" | while read -r key; do
    case "$key" in
        url | create-stream | subjects | storage | auth.jwt | auth.seed | auth.user | auth.password | \
            auth.tls.keystore | auth.tls.keystore.password | auth.tls.password) ;;
        *) fail "examples/debezium/application.properties: debezium.sink.nats-jetstream.$key does not exist in 2.7" ;;
    esac
done

debezium_fetch_or_skip

readyz_code() { curl -s -o /dev/null -w '%{http_code}' "$(piper_url a /readyz)"; }
metric() { piper_metrics a | awk -v m="$1" '$1 == m { print $2 }'; }
event_count() { cat "$1"/*.events 2>/dev/null | wc -l; }

# expected CONSUMER FROM TO: the stream lines (sse-client's .events format:
# id, type and data, tab-separated, backslashes doubled) that the rows of
# CONSUMER with FROM < id <= TO must give: the payload compacted the way
# the service frames it (whitespace between tokens dropped, values kept).
expected() {
    sql "select id, type, payload::text from events
         where subscriber = '$1' and id > $2 and id <= $3 order by id" |
        /usr/bin/python3 -c '
import sys
for line in sys.stdin:
    ident, kind, text = line.rstrip("\n").split("|", 2)
    out, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            escaped = not escaped and ch == "\\"
            in_string = escaped or ch != "\""
        elif ch == "\"":
            in_string = True
        elif ch in " \t\r\n":
            continue
        out.append(ch)
    print("\t".join((ident, kind, "".join(out).replace("\\", "\\\\"))))
'
}
max_id() { sql "select coalesce(max(id), 0) from events"; }

# ---- start-up ----------------------------------------------------------------
pg_start_logical
nats_start
t0=$SECONDS
debezium_start cdc debezium.source.heartbeat.interval.ms=1000
debezium_wait_streaming cdc
log "observed: Debezium streaming $((SECONDS - t0))s after start"

piper_start a INGEST=nats NATS_URL="$NATS_URL" NATS_STREAM="$DEBEZIUM_STREAM" NATS_SUBJECT="$SUBJECT" \
    NATS_RECONNECT_MS=100 HEARTBEAT_SECONDS=1 REPLAY_IDLE_SECONDS=1
piper_wait_ready a 30

# Rows: phase 1 (5) and the rows written around the NATS kill (20 each).
C1_TOTAL=23
C2_TOTAL=22
mkdir -p "$WORK/c1" "$WORK/c2"
background "$SSE_CLIENT" --port "$(piper_port a)" --consumer c1 --sessions 2 --count "$C1_TOTAL" \
    --timeout 240 --out "$WORK/c1" 2>"$ARTIFACTS/$TEST_NAME.c1.log"
client1=$LAST_PID
background "$SSE_CLIENT" --port "$(piper_port a)" --consumer c2 --sessions 2 --count "$C2_TOTAL" \
    --timeout 240 --out "$WORK/c2" 2>"$ARTIFACTS/$TEST_NAME.c2.log"
client2=$LAST_PID
wait_for "4 streams" 10 sh -c "[ \$(grep -c 'session opened' '$(piper_log a)') -ge 4 ]"

# ---- phase 1: inserts become events, updates and deletes do not ------------
start_id=$(max_id)
sql "insert into events (type, subscriber, payload) values
         ('hello', 'c1', '{\"n\": 1}'), ('hello', 'c2', '{\"n\": 1, \"list\": [1, 2.50, \"x y\"]}')" >/dev/null
sql "insert into events (type, subscriber, payload)
     values ('unicode', 'c2', '{\"text\": \"café ☃ \\\"q\\\" back\\\\\\\\slash\", \"tab\": \"a\\tb\"}')" >/dev/null
# 1.5 MB: over nats-server's default max_payload, within the example's 8 MB.
sql "insert into events (type, subscriber, payload)
     select 'large', 'c1', jsonb_build_object('blob', repeat(md5('x'), 49152))" >/dev/null
sql "insert into events (type, subscriber, payload)
     values ('numbers', 'c1', '{\"big\": 9007199254740993, \"pi\": 3.14159265358979323846, \"neg\": -1}')" >/dev/null
phase1_id=$(max_id)
expected c1 "$start_id" "$phase1_id" >"$WORK/expected.c1"
expected c2 "$start_id" "$phase1_id" >"$WORK/expected.c2"
assert_eq 3 "$(wc -l <"$WORK/expected.c1")" "phase 1 rows for c1"
assert_eq 2 "$(wc -l <"$WORK/expected.c2")" "phase 1 rows for c2"

# The service reads every hinted row back from the table (a NATS message is
# only a hint), so a row deleted before its read is never delivered: the
# update and the delete come once the inserts have arrived.
wait_for "phase 1 on every stream" 60 sh -c "[ \$(cat '$WORK'/c1/*.events | wc -l) -ge 6 ] && [ \$(cat '$WORK'/c2/*.events | wc -l) -ge 4 ]"
ignored_before=$(metric event_piper_events_ignored_total)
sql "update events set payload = '{\"n\": 2}' where id = (select min(id) from events where subscriber = 'c1' and id > $start_id)" >/dev/null
sql "delete from events where id = (select min(id) from events where subscriber = 'c2' and id > $start_id)" >/dev/null
wait_for "the update and the delete to be ignored" 30 \
    sh -c "[ \$(curl -s '$(piper_url a /metrics)' | awk '\$1 == \"event_piper_events_ignored_total\" { print \$2 }') -ge $((ignored_before + 2)) ]"
for s in 0 1; do
    head -n 3 "$WORK/c1/$s.events" | diff -u "$WORK/expected.c1" - >&2 || fail "c1 stream $s after phase 1"
    head -n 2 "$WORK/c2/$s.events" | diff -u "$WORK/expected.c2" - >&2 || fail "c2 stream $s after phase 1"
done
sleep 1 # an update or delete turned into an event would show up by now
assert_eq 6 "$(event_count "$WORK/c1")" "c1 streams: the update made no event"
assert_eq 4 "$(event_count "$WORK/c2")" "c2 streams: the delete made no event"
assert_eq $((ignored_before + 2)) "$(metric event_piper_events_ignored_total)" "update and delete ignored"
log "phase 1: 5 inserts delivered exactly to 4 streams; 1 update and 1 delete ignored"

# ---- phase 2: nats-server killed while rows are inserted --------------------
writer() { # 40 rows, c1 and c2 in turn, one every 50 ms
    local i
    for i in $(seq 1 40); do
        psql "$DATABASE_URL" -X -q -c "insert into events (type, subscriber, payload)
            values ('tick', 'c$(((i - 1) % 2 + 1))', '{\"i\": $i}')" || return 1
        sleep 0.05
    done
}
writer &
writer_pid=$!
BACKGROUND_PIDS+=("$writer_pid")
wait_for "the first rows of the writer" 10 sh -c "[ \$(cat '$WORK'/c1/*.events | wc -l) -ge 8 ]"
nats_kill KILL
killed_at=$SECONDS
log "nats-server killed (SIGKILL) after $(($(event_count "$WORK/c1") / 2 - 3)) of c1's tick rows reached c1's streams"

debezium_wait_exit cdc 60 || fail "Debezium still runs 60s after nats-server was killed"
log "observed: Debezium exited with status $DEBEZIUM_EXIT $((SECONDS - killed_at))s after nats-server was killed:"
grep -m 1 'Connector completed' "${DEBEZIUM_LOG[cdc]}" | cut -c 1-240 >&2 || true
[ "$DEBEZIUM_EXIT" != 0 ] || fail "Debezium exited with status 0 after losing NATS"

wait_for "/readyz 503 while NATS is down" 15 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' '$(piper_url a /readyz)') = 503 ]"
assert_eq 0 "$(metric event_piper_listener_connected)" "listener_connected while NATS is down"
{ kill -0 "$client1" && kill -0 "$client2"; } || fail "a stream client ended while NATS was down"
assert_eq 4 "$(metric event_piper_sessions_open)" "streams open while NATS is down"
log "observed: the service answers /readyz 503, listener_connected 0, keeps its 4 streams open ($(grep -c 'nats ingest down' "$(piper_log a)") 'nats ingest down' log lines)"
wait "$writer_pid" || fail "the writer failed"
log "all 40 tick rows committed while NATS and Debezium were down or dying"

# Started while NATS is still down, Debezium exits at start-up.
t0=$SECONDS
debezium_start cdc
debezium_wait_exit cdc 90 || fail "Debezium started without NATS still runs after 90s"
log "observed: Debezium started without NATS exited with status $DEBEZIUM_EXIT after $((SECONDS - t0))s"
[ "$DEBEZIUM_EXIT" != 0 ] || fail "Debezium without NATS exited with status 0"

nats_start
t0=$SECONDS
debezium_start cdc debezium.source.heartbeat.interval.ms=1000
debezium_wait_streaming cdc
log "observed: Debezium streaming again $((SECONDS - t0))s after its restart"
piper_wait_ready a 30

final_id=$(max_id)
expected c1 "$phase1_id" "$final_id" >>"$WORK/expected.c1"
expected c2 "$phase1_id" "$final_id" >>"$WORK/expected.c2"
assert_eq "$C1_TOTAL" "$(wc -l <"$WORK/expected.c1")" "rows for c1"
assert_eq "$C2_TOTAL" "$(wc -l <"$WORK/expected.c2")" "rows for c2"
wait "$client1" || fail "c1's streams did not get their $C1_TOTAL events (see $TEST_NAME.c1.log)"
wait "$client2" || fail "c2's streams did not get their $C2_TOTAL events (see $TEST_NAME.c2.log)"
for s in 0 1; do
    assert_file_eq "$WORK/expected.c1" "$WORK/c1/$s.events" "c1 stream $s"
    assert_file_eq "$WORK/expected.c2" "$WORK/c2/$s.events" "c2 stream $s"
done
received=$(metric event_piper_events_received_total)
log "observed: every stream has all its rows once, in order; the service received $received change" \
    "messages for 47 row changes (45 inserts, 1 update, 1 delete), so Debezium republished $((received - 47))"
[ "$(metric event_piper_listener_reconnects_total)" -ge 1 ] || fail "the NATS reconnect was not counted"
assert_eq 0 "$(metric 'event_piper_events_invalid_total{reason="bad_message"}')" "no malformed change event"

# ---- hints, heartbeats and staleness ------------------------------------------

# The service reads Debezium's heartbeats (__debezium-heartbeat.piper, every
# heartbeat.interval.ms) as proof that the ingest is alive, so that a quiet
# table does not make it look stale.
check_heartbeats_keep_ingest_alive() {
    local age=3
    piper_start hb INGEST=nats NATS_URL="$NATS_URL" NATS_STREAM="$DEBEZIUM_STREAM" NATS_SUBJECT="$SUBJECT" \
        READY_MAX_INGEST_AGE_SECONDS=$age
    piper_wait_ready hb 30
    sleep $((age * 3)) # no row is written; Debezium sends a heartbeat every second
    assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "$(piper_url hb /readyz)")" \
        "/readyz with heartbeats but no rows"
    local heartbeats
    heartbeats=$(piper_metric hb event_piper_ingest_heartbeats_total)
    [ "$heartbeats" -ge $((age * 2)) ] || fail "only $heartbeats heartbeats taken in $((age * 3))s"
    assert_eq 0 "$(piper_metric hb event_piper_events_invalid_total)" "heartbeats are not bad messages"
    log "observed: $heartbeats heartbeats taken in $((age * 3))s without a row; /readyz 200"
    piper_stop hb
}

# /readyz answers 503 when no message (row or heartbeat) arrived for
# READY_MAX_INGEST_AGE_SECONDS although NATS itself is up, which is what a
# stopped Debezium looks like; and 200 again once Debezium is back.
check_readyz_stale_without_messages() {
    local age=3
    piper_start stale INGEST=nats NATS_URL="$NATS_URL" NATS_STREAM="$DEBEZIUM_STREAM" NATS_SUBJECT="$SUBJECT" \
        READY_MAX_INGEST_AGE_SECONDS=$age
    piper_wait_ready stale 30
    debezium_stop cdc
    wait_for "/readyz 503 without messages for ${age}s" $((age + 5)) \
        sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' '$(piper_url stale /readyz)') = 503 ]"
    assert_contains "$(curl -s "$(piper_url stale /readyz)")" \
        "no NATS message or heartbeat within READY_MAX_INGEST_AGE_SECONDS" "/readyz reason"
    assert_eq 1 "$(piper_metric stale event_piper_listener_connected)" "NATS itself is still up"
    local t0=$SECONDS
    debezium_start cdc debezium.source.heartbeat.interval.ms=1000
    # Resuming from its offsets on a quiet database, Debezium looks for its
    # WAL position until the next change arrives, and logs that it streams
    # only then; its heartbeats flow meanwhile, and they are what this waits for.
    piper_wait_ready stale 90
    log "observed: /readyz 200 again $((SECONDS - t0))s after Debezium's restart, before any row"
    sql "insert into events (type, subscriber, payload) values ('wake', 'nobody', '{}')" >/dev/null
    debezium_wait_streaming cdc
    piper_stop stale
}

# Rows whose change event holds what no C number or date holds: a 30-digit
# integer and 1e400 (which jsonb prints as 401 digits) in the payload string,
# an 'infinity' timestamp. The message is only a hint; the stream gets the
# table's row, exactly.
check_rows_read_back_exactly() {
    local from
    from=$(max_id)
    mkdir -p "$WORK/c3"
    background "$SSE_CLIENT" --port "$(piper_port a)" --consumer c3 --count 2 --timeout 30 \
        --out "$WORK/c3" 2>"$ARTIFACTS/$TEST_NAME.c3.log"
    local client=$LAST_PID
    wait_for "the c3 stream" 10 sh -c "[ \$(grep -c 'consumer=c3' '$(piper_log a)') -ge 1 ]"
    sql "insert into events (type, subscriber, payload)
         values ('numbers', 'c3', '{\"int30\": 123456789012345678901234567890, \"huge\": 1e400}')" >/dev/null
    sql "insert into events (type, subscriber, timestamp, payload) values ('forever', 'c3', 'infinity', '{}')" >/dev/null
    wait "$client" || fail "c3 did not get its 2 rows"
    expected c3 "$from" "$(max_id)" >"$WORK/expected.c3"
    assert_file_eq "$WORK/expected.c3" "$WORK/c3/0.events" "rows with exact numbers and an infinite timestamp"
    log "observed: the 30-digit, 1e400 and 'infinity' rows delivered exactly in NATS mode"
}

check_rows_read_back_exactly
check_heartbeats_keep_ingest_alive
check_readyz_stale_without_messages
assert_eq 0 "$(metric 'event_piper_events_invalid_total{reason="bad_message"}')" \
    "no bad message, heartbeats included"
[ "$(metric event_piper_ingest_heartbeats_total)" -gt 0 ] || fail "a took no heartbeat"

piper_stop a
debezium_stop cdc
test_done
