#!/usr/bin/env bash
# PostgreSQL going away under open streams: the LISTEN backend terminated,
# killed with SIGKILL (the whole cluster restarts) and a fast restart. Streams
# stay open with heartbeats, /readyz says not ready meanwhile, and every row
# committed while the listener was away arrives after it is back, once.
source "$(dirname "$0")/../lib.sh"

pg_start
# A slow first reconnect leaves a window in which rows commit unnotified.
piper_start a HEARTBEAT_SECONDS=1 PG_RECONNECT_MIN_MS=3000 PG_RECONNECT_MAX_MS=3000
piper_wait_ready a
port=$(piper_port a)
url=$(piper_url a)

for c in alpha beta gamma; do insert_event "$c" seed '{"n": 0}' >/dev/null; done
mkdir -p "$WORK/s"
# Fresh streams and a resuming one; none of them reconnects by itself.
background "$SSE_CLIENT" --port "$port" --consumers alpha,beta,gamma --sessions 6 \
    --out "$WORK/s/fresh" --quiet
clients=$LAST_PID
background "$SSE_CLIENT" --port "$port" --consumer alpha --last-event-id 0 \
    --out "$WORK/s/resume" --quiet
resumer=$LAST_PID
wait_log a 'msg="session opened"' 5 0 7
first=$(sql "select max(id) from events")

listener_pid() {
    sql "select pid from pg_stat_activity where application_name = 'event-piper listener'"
}

# outage DESCRIPTION POSTGRES DISRUPTION...: runs the disruption, inserts rows
# while the listener is away, and waits for recovery. POSTGRES is "crash"
# when the disruption makes the postmaster restart every backend (the rows
# are then inserted once its log says it accepts connections again), "up"
# when PostgreSQL is up when the disruption returns.
round=0
outage() {
    local what=$1 postgres=$2 pg_offset
    shift 2
    round=$((round + 1))
    pg_offset=$(pg_log_size)
    "$@"
    wait_http_status "$url/readyz" 503 10 "/readyz to say not ready ($what)"
    if [ "$postgres" = crash ]; then
        wait_pg_log "database system is ready to accept connections" 20 \
            "PostgreSQL to restart its backends ($what)" "$pg_offset"
    fi
    wait_for "PostgreSQL to accept queries" 20 psql "$DATABASE_URL" -X -q -t -A -c "select 1"
    local c i
    for i in 1 2 3; do
        for c in alpha beta gamma; do
            sql "insert into events (type, subscriber, payload) values ('during', '$c', '{\"round\": $round, \"i\": $i}')" >/dev/null
        done
    done
    wait_http_status "$url/readyz" 200 20 "/readyz to recover ($what)"
    for c in alpha beta gamma; do insert_event "$c" after "{\"round\": $round}" >/dev/null; done
    log "$what: recovered"
}

terminate_listener() { sql "select pg_terminate_backend($(listener_pid))" >/dev/null; }
# The postmaster answers a killed backend by restarting every backend.
kill_listener() { kill -9 "$(listener_pid)"; }
restart_postgres() { pg_restart; }

outage "pg_terminate_backend of the listener" up terminate_listener
outage "kill -9 of the listener backend" crash kill_listener
outage "pg_ctl restart -m fast" up restart_postgres

for f in "$WORK"/s/fresh/*.events "$WORK/s/resume/0.events"; do
    wait_for "$(basename "$f") to catch up" 20 grep -q 'after	{"round":3}' "$f"
done

# Session i of the fresh client has consumer i mod 3 and started after the
# seed rows; the resuming one started at 0.
consumers=(alpha beta gamma)
for i in 0 1 2 3 4 5; do
    c=${consumers[$((i % 3))]}
    expected=$(sql "select id from events where subscriber = '$c' and id > $first order by id")
    got=$(cut -f1 "$WORK/s/fresh/$i.events")
    [ "$expected" == "$got" ] || {
        diff <(echo "$expected") <(echo "$got") >&2
        fail "fresh stream $i ($c) differs from the table"
    }
done
expected=$(sql "select id from events where subscriber = 'alpha' order by id")
assert_eq "$expected" "$(cut -f1 "$WORK/s/resume/0.events")" "resuming stream"
kill -0 "$clients" || fail "the streams did not stay open through the outages"
kill -0 "$resumer" || fail "the resuming stream did not stay open"
grep -q 'reason=client_gone' "$(piper_log a)" && fail "a stream was closed during the outages"
metrics=$(piper_metrics a)
assert_contains "$metrics" "event_piper_listener_reconnects_total 3" "three reconnects counted"
assert_contains "$metrics" "event_piper_listener_connected 1" "connected again"
piper_stop a
test_done
