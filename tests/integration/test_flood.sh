#!/usr/bin/env bash
# A burst of notifications that takes much longer to fan out than the
# listener's probe timeout (PG_PING_TIMEOUT_SECONDS=1): the listener must not
# mistake the backlog for a dead connection (which would add a gap fill for
# every stream to the overload), the loop must keep answering /healthz and
# /metrics between notifications, and every stream must still get every
# event exactly once.
#
# Found by bench/run.sh overload: before the fix, one callback fanned out
# everything libpq had read, /healthz went unanswered for over 10 s, the
# probe's deadline passed, and the reconnect's gap fill wrote whole pages to
# all 5,000 streams at once (GBs of RSS).
source "$(dirname "$0")/../lib.sh"

SESSIONS=1000
EVENTS=600

pg_start
piper_start a PG_PING_SECONDS=1 PG_PING_TIMEOUT_SECONDS=1 HEARTBEAT_SECONDS=1
piper_wait_ready a
background "$SSE_CLIENT" --port "$(piper_port a)" --consumer flood --sessions "$SESSIONS" \
    --count "$EVENTS" --timeout 300 --out "$WORK/streams" --quiet --source-ips 127.0.0.2-127.0.0.9
client=$LAST_PID
wait_metric a event_piper_sessions_open = "$SESSIONS" 30

# One transaction: all notifications arrive together.
sql "insert into events (type, subscriber, payload)
     select 'flood', 'flood', jsonb_build_object('n', n, 'pad', repeat('x', 200))
     from generate_series(1, $EVENTS) n" >/dev/null
started=$SECONDS

# While the fan-out runs, the service answers. Each probe allows 5 s, well
# above the 2 ms delivery budget per loop pass; without the budget one pass
# lasts the whole fan-out.
probes=0
while kill -0 "$client" 2>/dev/null; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$(piper_url a /healthz)" || true)
    [ "$code" = 200 ] || fail "/healthz did not answer within 5 s during the fan-out (got '$code')"
    probes=$((probes + 1))
    sleep 0.2
done
wait "$client" || fail "not every stream got its $EVENTS events"
log "fan-out of $((SESSIONS * EVENTS)) deliveries took about $((SECONDS - started)) s; /healthz answered all $probes probes"
[ "$probes" -ge 3 ] || log "note: the fan-out was too quick to probe much ($probes probes)"

assert_eq 0 "$(piper_metric a event_piper_listener_reconnects_total)" "listener reconnects during the flood"
assert_eq 0 "$(piper_metric a event_piper_replay_queries_total)" "replay (gap fill) queries"
want=$(sql "select string_agg(id::text, ' ' order by id) from events")
for i in 0 $((SESSIONS / 2)) $((SESSIONS - 1)); do
    assert_eq "$want" "$(cut -f1 "$WORK/streams/$i.events" | tr '\n' ' ' | sed 's/ $//')" "stream $i"
done
assert_eq $((SESSIONS * EVENTS)) "$(cat "$WORK"/streams/*.events | wc -l)" "events over all streams"
grep -q 'probe unanswered' "$(piper_log a)" && fail "the listener gave up on a live connection"
piper_stop a
test_done
