#!/usr/bin/env bash
# Honest counters: each counter (and reject reason) that no other test
# moves is made to move here by the event it counts, read from /metrics:
# rejections invalid_query, invalid_body, invalid_type, insert_failed,
# tokens_disabled, too_many_sessions, missing_token, api_key_required,
# wrong_consumer, token_expired, shutting_down; ingest resyncs (a confirming
# read cancelled); rows that cannot be events (bad_row); TLS handshake
# failures; streams closed at shutdown; the notification lag histogram,
# bytes written, and the per-transport gauges.
source "$(dirname "$0")/../lib.sh"

metric() { piper_metric "$1" "$2"; }
rejected() { piper_metric "$1" "event_piper_requests_rejected_total{reason=\"$2\"}"; }
# expect STATUS ERROR CURL ARGS...: one request answers STATUS with ERROR.
expect() {
    local status=$1 error=$2 out
    shift 2
    out=$(curl -s --max-time 5 -w '\n%{http_code}' "$@" || true)
    assert_eq "$status" "$(tail -n 1 <<<"$out")" "status of $*"
    assert_contains "$out" "\"error\":\"$error\"" "error of $*"
}

pg_start

# ---- the demo instance: body, query and insert errors, limits, resyncs ----------
piper_start c DEMO=1 MAX_SESSIONS=2 HEARTBEAT_SECONDS=1 SHUTDOWN_SECONDS=4
piper_wait_ready c
url=$(piper_url c)
background curl -sN -o "$WORK/good" -H 'X-Consumer-Id: good' "$url/events"
wait_log c 'msg="session opened".*consumer=good' 10

expect 400 invalid_query "$url/events?consumer_id=%zz"
expect 400 invalid_body -X POST -H 'Content-Type: application/json' --data '{"consumer_id": "good"' "$url/demo/events"
expect 400 invalid_type -X POST -H 'Content-Type: application/json' \
    --data '{"consumer_id": "good", "type": "a\nb", "payload": {}}' "$url/demo/events"
expect 404 tokens_disabled -X POST "$url/auth/token"
# A row the database refuses.
sql "alter table events add constraint no_refused check (type <> 'refused')"
expect 503 insert_failed -X POST -H 'Content-Type: application/json' \
    --data '{"consumer_id": "good", "type": "refused", "payload": {}}' "$url/demo/events"
sql "alter table events drop constraint no_refused"
# MAX_SESSIONS=2: the second stream fits, a third does not.
background curl -sN -o /dev/null -H 'X-Consumer-Id: second' "$url/events"
wait_metric c event_piper_sessions_open = 2 10
expect 503 too_many_sessions -H 'X-Consumer-Id: third' "$url/events"
stop_quietly "$LAST_PID"
wait_metric c event_piper_sessions_open = 1 10
for reason in invalid_query invalid_body invalid_type tokens_disabled insert_failed too_many_sessions; do
    assert_eq 1 "$(rejected c "$reason")" "rejections counted as $reason"
done

# Live rows: the lag histogram and bytes written move; the gauges describe
# the one open stream.
insert_event good tick '{"n": 1}' >/dev/null
wait_for "the good stream's row" 10 grep -q '^data: {"n":1}$' "$WORK/good"
wait_metric c event_piper_notification_lag_seconds_count -ge 1 10
[ "$(metric c event_piper_bytes_written_total)" -gt 0 ] || fail "event_piper_bytes_written_total did not move"
assert_eq 1 "$(metric c 'event_piper_streams_open{transport="http1"}')" "HTTP/1.1 streams open"
assert_eq 1 "$(metric c event_piper_consumers)" "consumers with a stream"
[ "$(metric c 'event_piper_connections_open{transport="http1"}')" -ge 2 ] ||
    fail "HTTP/1.1 connections open (the stream and this /metrics request)"

# A row that cannot become an SSE event (a line break in its type) is
# skipped and counted as bad_row, live and again in a replay.
sql "insert into events (type, subscriber, payload) values (E'bad\\ntype', 'good', '{}')" >/dev/null
wait_metric c 'event_piper_events_invalid_total{reason="bad_row"}' = 1 10
stream_until "$WORK/replay" '^data: \{"n":1\}$' 10 -H 'X-Consumer-Id: good' -H 'Last-Event-ID: 0' "$url/events" ||
    fail "the replay of good's rows"
wait_metric c 'event_piper_events_invalid_total{reason="bad_row"}' = 2 10

# A confirming read that fails (cancelled while it waits for a lock): the
# hints are dropped and the live stream catches up from the table instead.
resyncs=$(metric c event_piper_ingest_resyncs_total)
background psql "$DATABASE_URL" -X -q -c "begin; lock table events in access exclusive mode; select pg_sleep(30)"
locker=$LAST_PID
table_locked() {
    [ "$(sql "select count(*) from pg_locks where relation = 'events'::regclass and mode = 'AccessExclusiveLock' and granted")" = 1 ]
}
read_waits() {
    [ "$(sql "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query ilike '%events%'")" -ge 1 ]
}
wait_for "the lock" 20 table_locked
sql "select pg_notify('new_events', '{\"id\": 999999, \"subscriber\": \"good\", \"type\": \"x\", \"ts\": 0, \"payload\": {}}')" >/dev/null
wait_for "the confirming read to wait for the lock" 10 read_waits
sql "select pg_cancel_backend(pid) from pg_stat_activity where wait_event_type = 'Lock' and query ilike '%events%'" >/dev/null
wait_metric c event_piper_ingest_resyncs_total -gt "$resyncs" 10
# The locking session's backend sleeps on after psql is gone: end it.
sql "select pg_terminate_backend(pid) from pg_locks
     where relation = 'events'::regclass and mode = 'AccessExclusiveLock' and granted" >/dev/null
stop_quietly "$locker"
insert_event good tick '{"n": 2}' >/dev/null
wait_for "the good stream's row after the resync" 10 grep -q '^data: {"n":2}$' "$WORK/good"

# Shutdown: a request whose head began before SIGTERM is answered 503
# shutting_down, and /metrics asked for the same way shows the stream closed
# as shutdown, while a stream that reads nothing holds the process open.
sql "insert into events (type, subscriber, payload)
     select 'big', 'stuck', jsonb_build_object('pad', repeat('x', 1000)) from generate_series(1, 5000)" >/dev/null
: >"$WORK/stuck.ready"
background /usr/bin/python3 "$ROOT/tests/tools/attack.py" hold "$(piper_port c)" 1 60 "$WORK/stuck.ready" stuck >/dev/null
wait_for "the stuck stream" 10 test -s "$WORK/stuck.ready"
wait_log c 'msg="session opened".*consumer=stuck' 10
/usr/bin/python3 - "$(piper_port c)" "$WORK" >"$WORK/during" <<'EOF' &
import os, socket, sys, time
port, work = int(sys.argv[1]), sys.argv[2]
a = socket.create_connection(("127.0.0.1", port))
a.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n")
b = socket.create_connection(("127.0.0.1", port))
b.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
open(work + "/heads.begun", "w").close()
while not os.path.exists(work + "/go"):
    time.sleep(0.05)
def finish(s, rest):
    s.sendall(rest)
    s.settimeout(10)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
print(finish(a, b"X-Consumer-Id: late\r\n\r\n").decode())
print(finish(b, b"Connection: close\r\n\r\n").decode())
EOF
during=$!
wait_for "the two heads begun" 10 test -f "$WORK/heads.begun"
offset=$(log_size c)
kill -TERM "$(piper_pid c)"
wait_log c 'msg="session closed".*consumer=good .*reason=shutdown' 10 "$offset"
touch "$WORK/go"
wait "$during" || fail "the requests made during shutdown failed"
assert_contains "$(cat "$WORK/during")" '"error":"shutting_down"' "a stream asked for during shutdown"
grep -q '^event_piper_requests_rejected_total{reason="shutting_down"} 1' "$WORK/during" ||
    fail "shutting_down not counted: $(grep shutting_down "$WORK/during")"
grep -q '^event_piper_sessions_closed_total{reason="shutdown"} 1' "$WORK/during" ||
    fail "the stream closed at shutdown not counted: $(grep 'closed_total{reason="shutdown"' "$WORK/during")"
wait_exit "$(piper_pid c)" 20 "the instance to exit after its shutdown deadline"
forget_pid "$(piper_pid c)"

# ---- authentication rejections ------------------------------------------------
secret=0123456789abcdef0123456789abcdef-secret
printf 'sk_test_0123456789abcdef  alice\n' >"$WORK/keys"
piper_start k API_KEYS_FILE="$WORK/keys" JWT_HS256_SECRET="$secret" JWT_LEEWAY_SECONDS=0
url=$(piper_url k)
expect 401 missing_token "$url/events"
expect 401 api_key_required -X POST "$url/auth/token"
expect 403 wrong_consumer -H 'Authorization: Bearer sk_test_0123456789abcdef' -H 'X-Consumer-Id: bob' "$url/events"
expired=$(/usr/bin/python3 - "$secret" <<'EOF'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "alice", "exp": int(time.time()) - 60}).encode())
sig = b64(hmac.new(sys.argv[1].encode(), head + b"." + body, hashlib.sha256).digest())
print((head + b"." + body + b"." + sig).decode())
EOF
)
expect 401 token_expired -H "Authorization: Bearer $expired" "$url/events"
for reason in missing_token api_key_required wrong_consumer token_expired; do
    assert_eq 1 "$(rejected k "$reason")" "rejections counted as $reason"
done
piper_stop k

# ---- TLS handshake failures ------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null || fail "openssl could not make a certificate"
port=$(free_port)
logfile="$ARTIFACTS/$TEST_NAME.t.log"
env DATABASE_URL="$DATABASE_URL" PORT="$port" BIND_ADDRESS=127.0.0.1 TLS_CERT_FILE="$WORK/cert.pem" \
    TLS_KEY_FILE="$WORK/key.pem" "$PIPER_BIN" >"$logfile" 2>&1 &
PIPER_PIDS+=("$!")
PIPER_PID_OF[t]=$!
PIPER_PORTS[t]=$port
PIPER_LOGS[t]=$logfile
wait_for "the TLS instance" 10 curl -fsk "https://127.0.0.1:$port/healthz" -o /dev/null
tls_metric() { curl -fsk "https://127.0.0.1:$port/metrics" | metric_value event_piper_tls_handshake_failures_total; }
assert_eq 0 "$(tls_metric)" "TLS handshake failures before"
# Plain HTTP to the TLS port, and a TLS client offering only TLS 1.0.
curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$port/healthz" || true
curl -sk -o /dev/null --max-time 5 --tlsv1.0 --tls-max 1.0 "https://127.0.0.1:$port/healthz" || true
wait_output 2 10 "TLS handshake failures" tls_metric
piper_stop t
test_done
