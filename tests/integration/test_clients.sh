#!/usr/bin/env bash
# The client examples users copy, run as they are against the service:
# examples/curl/stream.sh, examples/node/client.mjs (the eventsource npm
# package), examples/java/SseClient.java (JDK 17 HttpClient, compiled with
# javac), examples/spring (WebClient, the jar make builds with Maven),
# examples/python/client.py (httpx + httpx-sse, in the virtualenv
# .ci/install-deps makes) and examples/go (standard library, built by make).
# Each starts after a given Last-Event-ID, so it first gets rows from replay,
# then live ones; the service is then stopped gracefully (SIGTERM) and later
# killed (SIGKILL), and restarted on the same port each time, while rows are
# committed. Every client must reconnect by itself with Last-Event-ID and
# end with exactly its consumer's rows after that id: same ids, types and
# compact JSON data, in order, nothing twice.
source "$(dirname "$0")/../lib.sh"

clients=(curl node java spring python go)

command -v node >/dev/null || fail "node not found (.ci/install-deps test installs it)"
command -v javac >/dev/null || fail "javac not found (Debian openjdk-17-jdk-headless)"
[ -d "$ROOT/examples/node/node_modules/eventsource" ] ||
    fail "eventsource is not installed (.ci/install-deps test runs npm ci in examples/node)"
[ -x "$PYTHON_VENV/bin/python" ] ||
    fail "no virtualenv in examples/python/.venv (.ci/install-deps test makes it)"
[ -f "$SPRING_JAR" ] || fail "no $SPRING_JAR (make examples builds it)"
[ -x "$GO_CLIENT" ] || fail "no $GO_CLIENT (make examples builds it)"
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
sessions_open() { curl -fs "$base/metrics" | awk '$1 == "event_piper_sessions_open" { print $2 }'; }
all_connected() { [ "$(sessions_open)" = "${#clients[@]}" ]; }
# A client that exits has refused something (a 4xx, a crash): stop there.
declare -A client_pid
clients_alive() {
    local c
    for c in "${clients[@]}"; do
        kill -0 "${client_pid[$c]}" 2>/dev/null && continue
        tail -n 20 "$ARTIFACTS/$TEST_NAME.$c.log" >&2
        fail "the $c client exited (its log is above)"
    done
}
all_connected_alive() { clients_alive && all_connected; }

# events CLIENT: what the client printed, one "<id> TAB <type> TAB <data>"
# line per event. curl prints the raw stream: its events become the same lines.
events() {
    if [ "$1" = curl ]; then
        awk '/^id: / { id = substr($0, 5) } /^event: / { ev = substr($0, 8) } /^data: / { data = substr($0, 7) }
             $0 == "" && id != "" { print id "\t" ev "\t" data; id = ""; ev = "" }' "$WORK/curl.out"
    else
        cat "$WORK/$1.out"
    fi
}
# all_reached ID: every client (still running) has printed the event ID last.
all_reached() {
    local c
    clients_alive
    for c in "${clients[@]}"; do
        [ "$(events "$c" | tail -1 | cut -f1)" = "$1" ] || return 1
    done
}

batch history
start_after=$(sql "select id from events where subscriber = 'app' order by id offset 2 limit 1")

# ---- the clients ----------------------------------------------------------------

LAST_EVENT_ID=$start_after LAST_ID_FILE="$WORK/curl.last" background "$ROOT/examples/curl/stream.sh" app "$base" \
    >"$WORK/curl.out" 2>"$ARTIFACTS/$TEST_NAME.curl.log"
client_pid[curl]=$LAST_PID
(cd "$ROOT/examples/node" && PIPER_URL=$base CONSUMER_ID=app LAST_EVENT_ID=$start_after \
    exec node client.mjs) >"$WORK/node.out" 2>"$ARTIFACTS/$TEST_NAME.node.log" &
BACKGROUND_PIDS+=("$!")
client_pid[node]=$!
LAST_EVENT_ID=$start_after background java -cp "$WORK/java" SseClient "$base" app \
    >"$WORK/java.out" 2>"$ARTIFACTS/$TEST_NAME.java.log"
client_pid[java]=$LAST_PID
background java -jar "$SPRING_JAR" --piper.url="$base" --piper.consumer=app --piper.last-event-id="$start_after" \
    >"$WORK/spring.out" 2>"$ARTIFACTS/$TEST_NAME.spring.log"
client_pid[spring]=$LAST_PID
PIPER_URL=$base CONSUMER_ID=app LAST_EVENT_ID=$start_after background "$PYTHON_VENV/bin/python" \
    "$ROOT/examples/python/client.py" >"$WORK/python.out" 2>"$ARTIFACTS/$TEST_NAME.python.log"
client_pid[python]=$LAST_PID
PIPER_URL=$base CONSUMER_ID=app LAST_EVENT_ID=$start_after background "$GO_CLIENT" \
    >"$WORK/go.out" 2>"$ARTIFACTS/$TEST_NAME.go.log"
client_pid[go]=$LAST_PID
# The JVMs take a few seconds to start (Spring Boot's the longest).
within 90 all_connected_alive || fail "the ${#clients[@]} clients did not all connect (open: $(sessions_open))"
resumed=$(grep -c "msg=\"\?session opened\"\?.* last_event_id=\"\?$start_after\"\?\$" "$(piper_log a)" || true)
assert_eq "${#clients[@]}" "$resumed" "streams that asked for a replay after id $start_after"

# ---- rows, a graceful restart and a crash -------------------------------------

batch live1
# The first instance delivers these live (the clients are past their replay).
live1_last=$(sql "select max(id) from events where subscriber = 'app'")
within 20 all_reached "$live1_last" || fail "the clients did not all receive id $live1_last live"
piper_stop "$instance"
log "stopped with SIGTERM"
batch down1
piper_start a1 PORT="$port" "${settings[@]}"
instance=a1
within 30 all_connected_alive || fail "the clients did not reconnect after the graceful stop"
batch live2
piper_kill "$instance"
log "killed with SIGKILL"
batch down2
piper_start a2 PORT="$port" "${settings[@]}"
instance=a2
within 30 all_connected_alive || fail "the clients did not reconnect after the crash"
batch live3

# ---- every client exact ---------------------------------------------------------

expected_events app "$start_after" >"$WORK/expected"
want=$(wc -l <"$WORK/expected")
last_id=$(tail -1 "$WORK/expected" | cut -f1)

within 20 all_reached "$last_id" || fail "the clients did not all receive id $last_id"

for client in "${clients[@]}"; do
    events "$client" >"$WORK/$client.events"
    out=$WORK/$client.events
    if ! cmp -s "$WORK/expected" "$out"; then
        diff "$WORK/expected" "$out" | head -20 >&2
        fail "$client did not receive exactly its consumer's rows after id $start_after"
    fi
    log "$client: $want events exact, from replay and live, across a graceful restart and a crash"
done
grep -q "^: " "$WORK/curl.out" || fail "curl saw no heartbeat comment"
clients_alive
# Each client reconnected once to each new instance, with the last id it had.
for name in a1 a2; do
    resumed=$(grep -c 'msg="\?session opened"\?.* last_event_id=' "$(piper_log "$name")" || true)
    assert_eq "${#clients[@]}" "$resumed" "streams on $name that resumed with Last-Event-ID"
done
piper_stop "$instance"
test_done
