#!/usr/bin/env bash
# WebSocket streams (RFC 6455): the Python example (examples/python/
# ws_client.py, the `websockets` package) across a graceful and a brutal
# restart with every row exactly once; the message format; the protocol
# rules (tests/tools/ws_probe.py): a client data message closes with 1003,
# an oversized one with 1009, a ping is answered, the close handshake; a
# token as Sec-WebSocket-Protocol, echoed back.
source "$(dirname "$0")/../lib.sh"

PY="$PYTHON_VENV/bin/python"
[ -x "$PY" ] || fail "no $PYTHON_VENV (.ci/install-deps test makes it)"
"$PY" -c 'import websockets' 2>/dev/null || fail "websockets missing in $PYTHON_VENV (.ci/install-deps test)"
PROBE=("$PY" "$ROOT/tests/tools/ws_probe.py")
SECRET="0123456789abcdef0123456789abcdef-test-secret"
printf 'sk_test_ws_0123456789abcdef  keyed\n' >"$WORK/keys"
ws_open() { echo "event_piper_streams_open{transport=\"websocket\"}"; }

pg_start
piper_start ws HEARTBEAT_SECONDS=1
piper_wait_ready ws
port=$(piper_port ws)
wsurl="ws://127.0.0.1:$port"

# ---- the example: replay, live, SIGTERM (close 1001), SIGKILL, every row
# once ----
sql "insert into events (type, subscriber, payload)
     select 'insert', 'wsc', jsonb_build_object('n', n, 'big', 12345678901234567890123) from generate_series(1, 5) n" >/dev/null
sql "insert into events (type, subscriber, payload) values ('', 'wsc', '{\"untyped\": true}')" >/dev/null
start_after=$(sql "select min(id) from events where subscriber = 'wsc'")
LAST_EVENT_ID=$start_after PIPER_URL=$(piper_url ws) CONSUMER_ID=wsc \
    background "$PY" "$ROOT/examples/python/ws_client.py" >"$WORK/ws.out" 2>"$ARTIFACTS/$TEST_NAME.client.log"
client=$LAST_PID
wait_file_lines "$WORK/ws.out" . 5 20 "the replayed rows"
wait_metric ws "$(ws_open)" = 1 15
assert_eq 1 "$(piper_metric ws 'event_piper_connections_open{transport="websocket"}')" "websocket connections"
insert_event wsc update '{"live": 1}' >/dev/null
wait_file_lines "$WORK/ws.out" . 6 15 "a live row"
offset=$(file_size "$ARTIFACTS/$TEST_NAME.client.log")
piper_stop ws
wait_file_lines "$ARTIFACTS/$TEST_NAME.client.log" 'closed by the server \(1001 ' 1 15 \
    "the example to see close 1001 at shutdown" "$offset"
insert_event wsc insert '{"while": "down"}' >/dev/null
piper_start ws PORT="$port" HEARTBEAT_SECONDS=1
wait_metric ws "$(ws_open)" = 1 20
insert_event wsc insert '{"after": "restart"}' >/dev/null
wait_file_lines "$WORK/ws.out" . 8 20 "the rows around the graceful restart"
piper_kill ws
insert_event wsc insert '{"while": "dead"}' >/dev/null
piper_start ws PORT="$port" HEARTBEAT_SECONDS=1
wait_metric ws "$(ws_open)" = 1 20
insert_event wsc insert '{"after": "kill"}' >/dev/null
# The examples print "message" for a row without a type, as EventSource names it.
expected_events wsc "$start_after" | sed 's/^\([0-9]*\)\t\t/\1\tmessage\t/' >"$WORK/expected"
wait_file_lines "$WORK/ws.out" . "$(wc -l <"$WORK/expected")" 20 "every row after the restarts"
assert_file_eq "$WORK/expected" "$WORK/ws.out" "the example's rows: exactly once, in order"
kill -0 "$client" 2>/dev/null || fail "the example exited"
stop_quietly "$client"
wait_metric ws "$(ws_open)" = 0 15

# ---- the message format, one text message per event ----
background "${PROBE[@]}" first "$wsurl/ws/fmt" >"$WORK/first" 2>&1
probe=$LAST_PID
wait_metric ws "$(ws_open)" = 1 15
id=$(insert_event fmt 'order' '{"a": [1, 2.50, "é"], "n": 123456789012345678901234567890}')
wait_exit "$probe" 15 "the first message"
assert_eq "{\"id\":\"$id\",\"event\":\"order\",\"data\":{\"a\":[1,2.50,\"é\"],\"n\":123456789012345678901234567890}}" \
    "$(cat "$WORK/first")" "the message of an event"
forget_pid "$probe"
# The alias is GET /events with Upgrade, the consumer id as for SSE.
background "${PROBE[@]}" first "$wsurl/events?consumer_id=fmt&last_event_id=$((id - 1))" >"$WORK/first" 2>&1
probe=$LAST_PID
wait_exit "$probe" 15 "the replayed message on /events"
assert_contains "$(cat "$WORK/first")" "{\"id\":\"$id\",\"event\":\"order\"" "GET /events with Upgrade, replayed"
forget_pid "$probe"

# ---- protocol rules ----
errors=$(piper_metric ws 'event_piper_sessions_closed_total{reason="protocol_error"}')
assert_eq 1003 "$("${PROBE[@]}" text "$wsurl/ws/rules")" "close code after a client text message"
assert_eq 1003 "$("${PROBE[@]}" binary "$wsurl/ws/rules")" "close code after a client binary message"
assert_eq 1009 "$("${PROBE[@]}" big "$wsurl/ws/rules")" "close code after a 64 KiB message"
wait_metric ws 'event_piper_sessions_closed_total{reason="protocol_error"}' = $((errors + 3))
assert_eq pong "$("${PROBE[@]}" ping "$wsurl/ws/rules")" "the answer to a ping"
assert_eq 1000 "$("${PROBE[@]}" close "$wsurl/ws/rules")" "the server's answer to a close (1000)"
assert_eq 400 "$("${PROBE[@]}" status "$wsurl/events")" "an upgrade without a consumer id"
# Heartbeats (HEARTBEAT_SECONDS=1 here) are pings carrying the unix time.
pings=$("${PROBE[@]}" pings "$wsurl/ws/quiet")
[[ "$pings" =~ ^[0-9]{10}\ [0-9]{10}$ ]] || fail "two pings with the time expected, got [$pings]"

# ---- a token as Sec-WebSocket-Protocol (browsers cannot set headers) ----
piper_start keyed JWT_HS256_SECRET="$SECRET" API_KEYS_FILE="$WORK/keys"
keyed=$(piper_url keyed)
token=$(curl -fsS -X POST -H "X-API-Key: sk_test_ws_0123456789abcdef" "$keyed/auth/token" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') || fail "no token from POST /auth/token"
kurl="ws://127.0.0.1:$(piper_port keyed)"
assert_eq 401 "$("${PROBE[@]}" status "$kurl/ws/keyed")" "an upgrade without a token"
assert_eq 403 "$("${PROBE[@]}" status "$kurl/ws/someone-else" "$token")" "a token for another consumer"
background "${PROBE[@]}" protocol "$kurl/ws/keyed" "$token" >"$WORK/protocol" 2>&1
probe=$LAST_PID
wait_metric keyed "$(ws_open)" = 1 15
id=$(insert_event keyed insert '{"k": 1}')
wait_exit "$probe" 15 "the message with a token as subprotocol"
assert_eq "$token" "$(sed -n 1p "$WORK/protocol")" "the subprotocol echoed"
assert_eq "{\"id\":\"$id\",\"event\":\"insert\",\"data\":{\"k\":1}}" "$(sed -n 2p "$WORK/protocol")" \
    "the message with a token as subprotocol"
forget_pid "$probe"

piper_stop keyed
piper_stop ws
test_done
