#!/usr/bin/env bash
# An HTTP/1.0 client gets a close-delimited stream; settings are validated at
# start-up with a one-line message naming the setting.
source "$(dirname "$0")/../lib.sh"

# Invalid settings: exit status 2, one line naming the setting, no start.
expect_invalid() { # NAME=value expected-fragment
    local out status=0
    out=$(env "$1" "$PIPER_BIN" 2>&1 >/dev/null) || status=$?
    assert_eq 2 "$status" "exit status for $1"
    assert_eq 1 "$(wc -l <<<"$out")" "one line for $1"
    assert_contains "$out" "$2" "message for $1"
}
expect_invalid PORT=abc "invalid PORT 'abc'"
expect_invalid PORT=70000 "invalid PORT"
expect_invalid HEARTBEAT_SECONDS=0 "invalid HEARTBEAT_SECONDS"
expect_invalid HEARTBEAT_SECONDS=15s "invalid HEARTBEAT_SECONDS"
expect_invalid LOG_FORMAT=xml "invalid LOG_FORMAT 'xml'"
expect_invalid SESSION_BUFFER_HARD_BYTES=1x "invalid SESSION_BUFFER_HARD_BYTES"
out=$("$PIPER_BIN" --heartbeat-seconds 2>&1 >/dev/null) || true
assert_contains "$out" "HEARTBEAT_SECONDS" "flag without a value"
out=$("$PIPER_BIN" --no-such-flag 2>&1 >/dev/null) || true
assert_contains "$out" "unknown option '--no-such-flag'" "unknown flag"
help=$("$PIPER_BIN" --help)
for name in DATABASE_URL PORT HEARTBEAT_SECONDS REPLAY_POOL_SIZE MAX_SESSIONS LOG_FORMAT; do
    assert_contains "$help" "$name" "--help lists $name"
done

pg_start
# Flags win over the environment.
piper_start a HEARTBEAT_SECONDS=30 --heartbeat-seconds=1
piper_wait_ready a
url=$(piper_url a /events)

background curl -sN --http1.0 -D "$WORK/headers" -o "$WORK/stream" "$url" -H "X-Consumer-Id: old"
wait_for "HTTP/1.0 headers" 5 grep -q "text/event-stream" "$WORK/headers"
grep -qi "transfer-encoding" "$WORK/headers" && fail "chunked encoding sent to an HTTP/1.0 client"
insert_event old insert '{"v": 1}' >/dev/null
wait_for "the event over HTTP/1.0" 5 grep -q '^data: {"v":1}$' "$WORK/stream"
wait_for "a heartbeat every second (flag won)" 3 grep -q '^: heartbeat' "$WORK/stream"

# Ending the stream ends the HTTP/1.0 body: curl exits by itself.
curl_pid=$LAST_PID
piper_stop a
wait_exit "$curl_pid" 5 "the HTTP/1.0 client to see the end"
test_done
