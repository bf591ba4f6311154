#!/usr/bin/env bash
# A client that stops reading is cut off at its output limit (hard limit on
# one instance, soft limit held too long on another) while a normal client of
# the same consumer keeps receiving everything; resuming loses nothing.
source "$(dirname "$0")/../lib.sh"

pg_start
piper_start hard SESSION_BUFFER_SOFT_BYTES=512k SESSION_BUFFER_SOFT_SECONDS=3600 SESSION_BUFFER_HARD_BYTES=1m
piper_start soft SESSION_BUFFER_SOFT_BYTES=256k SESSION_BUFFER_SOFT_SECONDS=1 SESSION_BUFFER_HARD_BYTES=1g
piper_wait_ready hard
piper_wait_ready soft

# A stream that is opened and never read: bash holds the socket open.
open_stalled() { # instance fd
    eval "exec $2<>/dev/tcp/127.0.0.1/$(piper_port "$1")"
    printf 'GET /events HTTP/1.1\r\nHost: test\r\nX-Consumer-Id: toto\r\n\r\n' >&"$2"
}
open_stalled hard 7
open_stalled soft 8
mkdir -p "$WORK/ok"
declare -A reader=()
for name in hard soft; do
    background "$SSE_CLIENT" --port "$(piper_port $name)" --consumer toto --count 400 \
        --timeout 60 --quiet --out "$WORK/ok/$name"
    reader[$name]=$LAST_PID
done
for name in hard soft; do
    wait_log "$name" 'msg="session opened"' 5 0 2 # both streams
done

# 400 rows of 64 KB, 26 MB in batches of 10, each once both normal readers
# have read the previous one: a reader that keeps reading stays far below
# the limits, while the stalled stream fills the kernel's socket buffers and
# then its backlog grows in the server.
for batch in $(seq 1 40); do
    sql "insert into events (type, subscriber, payload)
         select 'big', 'toto', jsonb_build_object('i', g, 'pad', repeat('x', 65536))
         from generate_series(1, 10) g" >/dev/null
    for name in hard soft; do
        wait_file_lines "$WORK/ok/$name/0.events" "" $((batch * 10)) 20 "the normal client on $name to read batch $batch"
    done
done
expected=$(sql "select id from events where subscriber = 'toto' order by id")

for name in hard soft; do
    wait "${reader[$name]}" || fail "the normal client on $name did not get all 400 events"
    assert_eq "$expected" "$(cut -f1 "$WORK/ok/$name/0.events")" "normal client on $name"
    wait_log "$name" "reason=slow_consumer" 20 # the stalled stream cut
    assert_contains "$(curl -s "$(piper_url $name /metrics)")" \
        'event_piper_sessions_closed_total{reason="slow_consumer"} 1' "slow consumer counted on $name"
done
grep -q "over hard limit" "$(piper_log hard)" || fail "hard limit not the cause on 'hard'"
grep -q "over soft limit" "$(piper_log soft)" || fail "soft limit not the cause on 'soft'"
exec 7>&- 8>&-

# The cut client resumes from the start and gets every row.
"$SSE_CLIENT" --port "$(piper_port hard)" --consumer toto --last-event-id 0 --count 400 \
    --timeout 60 --quiet --out "$WORK/resumed"
assert_eq "$expected" "$(cut -f1 "$WORK/resumed/0.events")" "resumed after the cut"
piper_stop hard
piper_stop soft
test_done
