#!/usr/bin/env bash
# The client examples users copy, run as they are against the service:
# examples/curl/stream.sh, examples/node/client.mjs (the eventsource npm
# package) and examples/java/SseClient.java (JDK 17 HttpClient, compiled with
# javac). Each starts after a given Last-Event-ID; the service is then
# stopped gracefully (SIGTERM) and later killed (SIGKILL), and restarted on
# the same port each time, while rows are committed. Every client must
# reconnect by itself with Last-Event-ID and end with exactly its
# consumer's rows after that id: same ids, types and compact JSON data, in
# order, nothing twice.
source "$(dirname "$0")/../lib.sh"

command -v node >/dev/null || fail "node not found (.ci/install-deps test installs it)"
command -v javac >/dev/null || fail "javac not found (Debian openjdk-17-jdk-headless)"
[ -d "$ROOT/examples/node/node_modules/eventsource" ] ||
    fail "eventsource is not installed (.ci/install-deps test runs npm ci in examples/node)"
javac -d "$WORK/java" "$ROOT/examples/java/SseClient.java" || fail "examples/java/SseClient.java does not compile"

pg_start
settings=(RETRY_MS=200 HEARTBEAT_SECONDS=1 SHUTDOWN_SECONDS=2)
piper_start a "${settings[@]}"
piper_wait_ready a
port=$(piper_port a)
base="http://127.0.0.1:$port"
instance=a

# batch LABEL: a transaction of rows for the clients' consumer, of the types
# the Node example listens to, and rows for someone else.
batch() {
    sql "insert into events (type, subscriber, payload)
         select case when n % 3 = 0 then 'order' else 'insert' end, 'app',
                jsonb_build_object('batch', '$1', 'n', n, 'text', 'ünïcode \"and\" \\\\ slash')
         from generate_series(1, 7) n order by n;
         insert into events (type, subscriber, payload) values ('insert', 'other', '{\"no\": true}')" >/dev/null
}

batch history
start_after=$(sql "select id from events where subscriber = 'app' order by id offset 2 limit 1")

# ---- the three clients ------------------------------------------------------

LAST_EVENT_ID=$start_after LAST_ID_FILE="$WORK/curl.last" background "$ROOT/examples/curl/stream.sh" app "$base" \
    >"$WORK/curl.out" 2>"$ARTIFACTS/$TEST_NAME.curl.log"
(cd "$ROOT/examples/node" && PIPER_URL=$base CONSUMER_ID=app LAST_EVENT_ID=$start_after \
    exec node client.mjs) >"$WORK/node.out" 2>"$ARTIFACTS/$TEST_NAME.node.log" &
BACKGROUND_PIDS+=("$!")
LAST_EVENT_ID=$start_after background java -cp "$WORK/java" SseClient "$base" app \
    >"$WORK/java.out" 2>"$ARTIFACTS/$TEST_NAME.java.log"
wait_metric a event_piper_sessions_open = 3 20 # the three clients connected

# ---- rows, a graceful restart and a crash -------------------------------------

batch live1
piper_stop "$instance"
log "stopped with SIGTERM"
batch down1
piper_start a1 PORT="$port" "${settings[@]}"
instance=a1
wait_metric a1 event_piper_sessions_open = 3 20 # reconnected after the graceful stop
batch live2
piper_kill "$instance"
log "killed with SIGKILL"
batch down2
piper_start a2 PORT="$port" "${settings[@]}"
instance=a2
wait_metric a2 event_piper_sessions_open = 3 20 # reconnected after the crash
batch live3

# ---- every client exact ---------------------------------------------------------

# Expected lines "<id> TAB <type> TAB <compact JSON>", computed independently
# of the service with Python's json module.
sql "select id, type, payload::text from events where subscriber = 'app' and id > $start_after order by id" |
    /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    id_, type_, payload = line.rstrip("\n").split("|", 2)
    print(id_, type_, json.dumps(json.loads(payload), ensure_ascii=False, separators=(",", ":")), sep="\t")
' >"$WORK/expected"
want=$(wc -l <"$WORK/expected")
last_id=$(tail -1 "$WORK/expected" | cut -f1)

# curl prints the raw stream: turn its events into the same lines.
curl_events() {
    awk '/^id: / { id = substr($0, 5) } /^event: / { ev = substr($0, 8) } /^data: / { data = substr($0, 7) }
         $0 == "" && id != "" { print id "\t" ev "\t" data; id = "" }' "$WORK/curl.out"
}
has_all() { [ "$(tail -1 "$1" | cut -f1)" = "$last_id" ]; }
curl_has_all() { curl_events >"$WORK/curl.events" && has_all "$WORK/curl.events"; }
wait_for "curl to receive id $last_id" 20 curl_has_all
wait_for "node to receive id $last_id" 20 has_all "$WORK/node.out"
wait_for "java to receive id $last_id" 20 has_all "$WORK/java.out"

for client in curl node java; do
    out=$WORK/$client.out
    [ "$client" = curl ] && out=$WORK/curl.events
    if ! cmp -s "$WORK/expected" "$out"; then
        diff "$WORK/expected" "$out" | head -20 >&2
        fail "$client did not receive exactly its consumer's rows after id $start_after"
    fi
    log "$client: $want events exact across a graceful restart and a crash"
done
grep -q "^: " "$WORK/curl.out" || fail "curl saw no heartbeat comment"
# Each client reconnected twice, each time with the last id it had.
for name in a1 a2; do
    resumed=$(grep -c 'msg="session opened".*last_event_id=' "$(piper_log "$name")" || true)
    assert_eq 3 "$resumed" "streams on $name that resumed with Last-Event-ID"
done
piper_stop "$instance"
test_done
