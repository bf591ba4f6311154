#!/usr/bin/env bash
# Limits: MAX_SESSIONS answers 503 with Retry-After and a JSON body and frees
# up as streams close; over-long headers are refused; at the descriptor
# limit the listener pauses and resumes, and every client is served in the
# end while the streams already open keep receiving.
source "$(dirname "$0")/../lib.sh"

pg_start

# --- maximum sessions ---------------------------------------------------------
piper_start capped MAX_SESSIONS=3
piper_wait_ready capped
background "$SSE_CLIENT" --port "$(piper_port capped)" --consumer full --sessions 3 \
    --count 1 --timeout 60 --quiet --out "$WORK/capped"
capped_client=$LAST_PID
wait_metric capped event_piper_sessions_open = 3 10

curl -s -D "$WORK/h" -o "$WORK/body" -H 'X-Consumer-Id: late' "$(piper_url capped /events)"
assert_eq "HTTP/1.1 503 Service Unavailable" "$(head -1 "$WORK/h" | tr -d '\r')" "status beyond MAX_SESSIONS"
grep -qi '^Retry-After: 5' "$WORK/h" || fail "no Retry-After on the 503"
grep -qi '^Content-Type: application/json' "$WORK/h" || fail "the 503 body is not JSON"
assert_contains "$(cat "$WORK/body")" '"error":"too_many_sessions"' "503 body"
# Health and metrics are not sessions: they still answer.
curl -fs "$(piper_url capped /readyz)" >/dev/null || fail "/readyz refused at MAX_SESSIONS"

insert_event full e '{"n": 1}' >/dev/null
wait "$capped_client" || fail "the 3 admitted streams did not get their event"
wait_metric capped event_piper_sessions_open = 0 10 # the streams closed
"$SSE_CLIENT" --port "$(piper_port capped)" --consumer full --last-event-id 0 --count 1 \
    --timeout 20 --quiet || fail "a stream was refused after the others closed"

# --- header sizes -----------------------------------------------------------------
big=$(head -c 9000 /dev/zero | tr '\0' 'a')
status=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Consumer-Id: toto" -H "X-Padding: $big" \
    "$(piper_url capped /events)")
case "$status" in 4??) ;; *) fail "a 9 KB header (MAX_HEADER_BYTES=8k) got status $status" ;; esac
curl -fs "$(piper_url capped /healthz)" >/dev/null || fail "not serving after an over-long header"
piper_stop capped

# --- descriptor limit -------------------------------------------------------------
# prlimit execs the service, so the pid the helpers track stays the service's.
cat >"$WORK/limited" <<EOF
#!/bin/sh
exec prlimit --nofile=40:40 -- "$PIPER_BIN" "\$@"
EOF
chmod +x "$WORK/limited"
real_bin=$PIPER_BIN
PIPER_BIN="$WORK/limited"
piper_start fd REPLAY_POOL_SIZE=1
PIPER_BIN=$real_bin
piper_wait_ready fd

# 60 streams cannot all be open under 40 descriptors: the rest wait in the
# kernel's accept queue until streams that got their 2 events close.
background "$SSE_CLIENT" --port "$(piper_port fd)" --consumer many --sessions 60 --count 2 --close-when-done \
    --timeout 120 --quiet --out "$WORK/fd"
fd_client=$LAST_PID
wait_log fd "accept failed; pausing" 20
# A row at a time, each once the last one made progress: a stream received
# it, or a stream waiting in the accept queue was let in (streams that got
# their 2 events close and free descriptors). /metrics is no signal here: its
# request would queue behind the streams.
progress() {
    echo $(($(cat "$WORK"/fd/*.events 2>/dev/null | wc -l) +
        $(lines_matching "$(piper_log fd)" 0 'msg="session opened"')))
}
progressed() { exited "$fd_client" || [ "$(progress)" -gt "$1" ]; }
while ! exited "$fd_client"; do
    before=$(progress)
    insert_event many tick '{"t": 1}' >/dev/null
    within 20 progressed "$before" || fail "no stream received a row or opened within 20 s (at $(progress))"
done
wait "$fd_client" || fail "not every stream was served after the descriptor limit"
for i in $(seq 0 59); do
    [ "$(wc -l <"$WORK/fd/$i.events")" = 2 ] || fail "stream $i did not get exactly 2 events"
done
curl -fs "$(piper_url fd /healthz)" >/dev/null || fail "not serving after the descriptor limit"
piper_stop fd
test_done
