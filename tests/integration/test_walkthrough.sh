#!/usr/bin/env bash
# The README walkthrough, driven with curl as a newcomer would: headers at
# once, heartbeat comments, an insert reaching every stream of its consumer
# in the documented format and no stream of another consumer.
source "$(dirname "$0")/../lib.sh"

pg_start
piper_start a HEARTBEAT_SECONDS=1
piper_wait_ready a
url=$(piper_url a /events)

background curl -sN -D "$WORK/toto1.headers" -o "$WORK/toto1" "$url" -H "X-Consumer-Id: toto"
background curl -sN -o "$WORK/toto2" "$url" -H "x-consumer-id: toto"
background curl -sN -o "$WORK/titi" "$url" -H "X-CONSUMER-ID: titi"

wait_for "stream headers" 5 grep -q "^Content-Type: text/event-stream" "$WORK/toto1.headers"
headers=$(tr -d '\r' <"$WORK/toto1.headers")
assert_contains "$headers" "HTTP/1.1 200 OK" "status line"
assert_contains "$headers" "Cache-Control: no-cache" "Cache-Control"
assert_contains "$headers" "X-Accel-Buffering: no" "X-Accel-Buffering"
wait_for "a heartbeat" 5 grep -q "^: heartbeat [0-9][0-9]*$" "$WORK/toto1"
wait_log a 'msg="session opened"' 5 0 3
grep -q "^id:" "$WORK/toto1" && fail "an event arrived before any insert"

# The first row of a fresh table: id 1, payload re-encoded compactly.
id=$(insert_event toto insert '{"foo": "bar"}')
assert_eq 1 "$id" "first id"
expected=$(printf 'id: 1\nevent: insert\ndata: {"foo":"bar"}')
for stream in toto1 toto2; do
    wait_for "the event on $stream" 5 grep -q '^data: {"foo":"bar"}$' "$WORK/$stream"
    assert_eq "$expected" "$(grep -A2 '^id: 1$' "$WORK/$stream")" "event block on $stream"
done

# Another consumer's event goes to titi only; toto's never reached titi.
# Events reach a stream in id order, so once toto's streams have a later
# event of their own, titi's would have come before it.
insert_event titi other '{"n": 1}' >/dev/null
wait_for "titi's event" 5 grep -q '^data: {"n":1}$' "$WORK/titi"
grep -q '"foo"' "$WORK/titi" && fail "titi received toto's event"
insert_event toto later '{"n": 2}' >/dev/null
for stream in toto1 toto2; do
    wait_for "toto's later event on $stream" 5 grep -q '^data: {"n":2}$' "$WORK/$stream"
    grep -q '"n":1' "$WORK/$stream" && fail "toto ($stream) received titi's event"
done

# Heartbeats keep coming, one line each, with a Unix time.
count_before=$(grep -c '^: heartbeat' "$WORK/toto1")
wait_for "more heartbeats" 5 sh -c "[ \$(grep -c '^: heartbeat' '$WORK/toto1') -gt $count_before ]"

piper_stop a
grep -q "reason=shutdown" "$(piper_log a)" || fail "streams were not ended by the shutdown"
test_done
