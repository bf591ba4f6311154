#!/usr/bin/env bash
# SIGTERM with 1,000 open streams: accepting stops, every stream ends with a
# clean end of body so clients reconnect elsewhere, a stream whose client no
# longer reads is cut at the deadline, the process exits 0 (no sanitizer or
# leak report) within the bound and every PostgreSQL connection is released.
source "$(dirname "$0")/../lib.sh"

pg_start
piper_start a MAX_STREAMS_PER_IP=0 SHUTDOWN_SECONDS=4 SESSION_BUFFER_HARD_BYTES=1g SESSION_BUFFER_SOFT_BYTES=1g
piper_wait_ready a
port=$(piper_port a)

consumers=$(seq -s, -f 'c%g' 0 49)
background "$SSE_CLIENT" --port "$port" --consumers "$consumers" --sessions 1000 \
    --out "$WORK/many" --quiet
client=$LAST_PID
# A reader that stopped reading with megabytes pending cannot take the final
# chunk: only the deadline ends it.
exec 7<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /events HTTP/1.1\r\nHost: test\r\nX-Consumer-Id: stuck\r\n\r\n' >&7
wait_metric a event_piper_sessions_open = 1001 30
sql "insert into events (type, subscriber, payload)
     select 'big', 'stuck', jsonb_build_object('pad', repeat('x', 65536))
     from generate_series(1, 300) g" >/dev/null
insert_event c7 last '{"before": "shutdown"}' >/dev/null
wait_for "the event on c7's streams" 10 grep -q before "$WORK/many/7.events"

start=$(date +%s%N)
piper_stop a 15
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
log "exited ${elapsed_ms} ms after SIGTERM"
[ "$elapsed_ms" -lt 10000 ] || fail "shutdown took ${elapsed_ms} ms with SHUTDOWN_SECONDS=4"
grep -q "shutdown deadline reached" "$(piper_log a)" || fail "the stuck stream was not cut at the deadline"
[ "$(grep -c 'reason=shutdown' "$(piper_log a)")" -ge 1001 ] || fail "not every stream ended with reason=shutdown"
wait_exit "$client" 10 "the client to see every stream end"
wait "$client" || fail "a stream did not end with a clean end of body (sse-client status $?)"
assert_eq 0 "$(sql "select count(*) from pg_stat_activity where application_name like 'event-piper%'")" \
    "connections left after exit"
exec 7>&-
test_done
