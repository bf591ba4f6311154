#!/usr/bin/env bash
# Reconnect storm: 5,000 streams arrive at once, all with Last-Event-ID (as
# after an instance or a load balancer restarts), while one live-only stream
# waits for new rows and writers keep inserting. The replay pool must stay
# within REPLAY_POOL_SIZE connections (checked in pg_stat_activity and in the
# metrics), replays must queue rather than fail, the live stream must get
# its rows while the storm is still replaying, and in the end every stream
# holds exactly its consumer's rows, in order. The metrics must agree with
# what the clients received.
source "$(dirname "$0")/../lib.sh"

CONSUMERS=50
ROWS_PER_CONSUMER=100
SESSIONS=5000 # session i resumes consumer c<i mod 50>
POOL=4
ulimit -n "$(ulimit -Hn)" # 5,000 sockets here and 10,000 descriptors in the client

pg_start
sql "insert into events (type, subscriber, payload)
     select 'history', format('c%s', lpad(c::text, 2, '0')), format('{\"n\": %s}', n)::jsonb
     from generate_series(0, $((CONSUMERS - 1))) c, generate_series(1, $ROWS_PER_CONSUMER) n
     order by c, n" >/dev/null
piper_start a REPLAY_POOL_SIZE=$POOL REPLAY_IDLE_SECONDS=1 HEARTBEAT_SECONDS=5
piper_wait_ready a
metric() { piper_metric a "$1"; }
# Without the strict parse: the sampler below reads these every 50 ms.
quick_metric() { piper_metric_now a "$1"; }

# ---- the live stream and the samplers --------------------------------------

background "$SSE_CLIENT" --port "$(piper_port a)" --consumer live --out "$WORK/live" \
    2>"$ARTIFACTS/$TEST_NAME.live.log"
live_pid=$LAST_PID
wait_metric a event_piper_sessions_open = 1 10 # the live stream

# Every 50 ms: pool connections open, lent, replays waiting (for a pool
# connection or for replay budget), replays running, budget bytes in use.
pool_samples="$WORK/pool.samples"
sample_pool() {
    while :; do
        curl -fs "$(piper_url a /metrics)" | awk '
            $1 == "event_piper_replay_pool_connections" { o = $2 }
            $1 == "event_piper_replay_pool_in_use" { u = $2 }
            $1 == "event_piper_replay_pool_waiting" { w += $2 }
            $1 == "event_piper_replay_budget_waiting" { w += $2 }
            $1 == "event_piper_replay_jobs" { j = $2 }
            $1 == "event_piper_replay_budget_bytes" { b = $2 }
            END { print o, u, w, j, b }'
        sleep 0.05
    done >"$pool_samples"
}
background sample_pool
samplers=("$LAST_PID")
# PostgreSQL's own view: backends of the replay pool (the listener and the
# psql asking are not counted).
pg_samples="$WORK/pg.samples"
sample_pg() {
    while :; do
        psql "$DATABASE_URL" -X -A -t -q -c "select count(*) from pg_stat_activity
            where application_name = 'event-piper replay'" || echo error
        sleep 0.1
    done >"$pg_samples"
}
background sample_pg
samplers+=("$LAST_PID")

# ---- the storm --------------------------------------------------------------

consumer_list=$(for i in $(seq 0 $((CONSUMERS - 1))); do printf 'c%02d,' "$i"; done)
consumer_list=${consumer_list%,}
mkdir -p "$WORK/storm"
storm_started=$(date +%s%N)
# Every session resumes from id 0 and so replays its consumer's whole history.
background "$SSE_CLIENT" --port "$(piper_port a)" --consumers "$consumer_list" --sessions "$SESSIONS" \
    --source-ips 127.0.0.2-127.0.0.41 --last-event-id 0 --out "$WORK/storm" --quiet \
    2>"$ARTIFACTS/$TEST_NAME.storm.log"
storm_pid=$LAST_PID

# Once replays queue for the pool, a row for the live stream: it must arrive
# while the storm is still being replayed, not after it.
waiting_for_pool() { [ "$(quick_metric event_piper_replay_pool_waiting)" -gt 0 ]; }
wait_for "replays to queue for the pool" 30 waiting_for_pool
live_id=$(sql "insert into events (type, subscriber, payload) values ('live', 'live', '{\"n\": 1}') returning id" | head -1)
inserted_at=$(date +%s%N)
live_arrived() { grep -q "^$live_id	" "$WORK/live/0.events" 2>/dev/null; }
wait_for "the live row during the storm" 30 live_arrived
live_ms=$((($(date +%s%N) - inserted_at) / 1000000))
jobs_left=$(quick_metric event_piper_replay_jobs)
log "live row delivered in ${live_ms} ms with $jobs_left replays still running or queued"
[ "$jobs_left" -gt 0 ] || fail "the live row arrived only after every replay of the storm had finished"

# Writers go on inserting while the storm replays: 10 transactions of 50
# rows (one per consumer, in order) plus one for the live stream, each once
# the live stream has the previous one's row.
for t in $(seq 1 10); do
    sql "begin;
         insert into events (type, subscriber, payload)
             select 'during', format('c%s', lpad(c::text, 2, '0')), format('{\"t\": $t}')::jsonb
             from generate_series(0, $((CONSUMERS - 1))) c order by c;
         insert into events (type, subscriber, payload) values ('live', 'live', '{\"t\": $t}');
         commit;" >/dev/null
    wait_file_lines "$WORK/live/0.events" "	live	\\{\"t\":$t\\}\$" 1 30 "the live row of transaction $t"
done

# ---- every stream exact -----------------------------------------------------

sql "select subscriber, id from events order by subscriber, id" | tr '|' ' ' >"$WORK/expected"
last_of() { awk -v c="$1" '$1 == c { id = $2 } END { print id }' "$WORK/expected"; }
# streams_behind: sessions whose last id is not yet their consumer's last.
streams_behind() {
    awk -v consumers="$CONSUMERS" -v sessions="$SESSIONS" -v dir="$WORK/storm" '
        FILENAME == ARGV[1] { last[$1] = $2; next }
        { top[FILENAME] = $1 }
        END {
            for (i = 0; i < sessions; i++) {
                f = dir "/" i ".events"; c = sprintf("c%02d", i % consumers)
                if (top[f] != last[c]) n++
            }
            print n + 0
        }' "$WORK/expected" "$WORK"/storm/*.events
}
storm_done() {
    kill -0 "$storm_pid" 2>/dev/null || fail "the storm's sse-client exited (see $ARTIFACTS/$TEST_NAME.storm.log)"
    [ "$(streams_behind)" = 0 ]
}
within 120 storm_done || fail "$(streams_behind) streams did not reach their consumer's last row in 120 s"
log "storm replayed in $((($(date +%s%N) - storm_started) / 1000000)) ms"
kill "${samplers[@]}" 2>/dev/null || true

bad=$(awk -v consumers="$CONSUMERS" -v sessions="$SESSIONS" -v dir="$WORK/storm" '
    FILENAME == ARGV[1] { want[$1] = want[$1] "," $2; next }
    { got[FILENAME] = got[FILENAME] "," $1 }
    END {
        for (i = 0; i < sessions; i++) {
            f = dir "/" i ".events"; c = sprintf("c%02d", i % consumers)
            if (got[f] != want[c]) print f, c
        }
    }' "$WORK/expected" "$WORK"/storm/*.events)
if [ -n "$bad" ]; then
    read -r f c <<<"$(echo "$bad" | head -1)"
    diff <(awk -v c="$c" '$1 == c { print $2 }' "$WORK/expected") <(cut -f1 "$f") | head -10 >&2
    fail "$(echo "$bad" | wc -l) of $SESSIONS streams differ from their consumer's rows"
fi
assert_eq "$(awk '$1 == "live" { print $2 }' "$WORK/expected" | tr '\n' ' ')" \
    "$(cut -f1 "$WORK/live/0.events" | tr '\n' ' ')" "the live stream's ids"
storm_events=$(cat "$WORK"/storm/*.events | wc -l)
live_events=$(wc -l <"$WORK/live/0.events")
log "all $SESSIONS streams exact ($storm_events events), live stream exact ($live_events events)"

# ---- the pool stayed bounded, and was used --------------------------------

max_col() { awk -v c="$1" '$c > m { m = $c } END { print m + 0 }' "$pool_samples"; }
[ "$(wc -l <"$pool_samples")" -gt 5 ] || fail "too few metric samples during the storm"
log "pool samples: max open $(max_col 1), max lent $(max_col 2), max waiting $(max_col 3), max replays $(max_col 4), max budget bytes $(max_col 5)"
[ "$(max_col 1)" -le "$POOL" ] || fail "the replay pool opened $(max_col 1) connections, limit $POOL"
[ "$(max_col 2)" -le "$POOL" ] || fail "the replay pool lent $(max_col 2) connections, limit $POOL"
[ "$(max_col 3)" -gt 100 ] || fail "replays never queued: the storm did not load the pool"
# REPLAY_BUFFER_BYTES (64m) bounds the pages buffered at once.
[ "$(max_col 5)" -le $((64 * 1024 * 1024)) ] || fail "replay budget exceeded: $(max_col 5) bytes"
grep -q error "$pg_samples" && fail "pg_stat_activity could not be sampled"
pg_max=$(sort -n "$pg_samples" | tail -1)
log "pg_stat_activity: at most $pg_max replay connections in $(wc -l <"$pg_samples") samples"
[ "$pg_max" -le "$POOL" ] || fail "PostgreSQL saw $pg_max replay connections, limit $POOL"
[ "$pg_max" -ge 1 ] || fail "PostgreSQL never saw a replay connection"

# ---- the metrics agree --------------------------------------------------------

assert_eq $((SESSIONS + 1)) "$(metric event_piper_sessions_opened_total)" "sessions opened"
assert_eq $((SESSIONS + 1)) "$(metric event_piper_sessions_open)" "sessions open"
assert_eq $((storm_events + live_events)) "$(metric event_piper_events_delivered_total)" \
    "events delivered = events the clients received"
replay_rows=$(metric event_piper_replay_rows_total)
[ "$replay_rows" -ge $((SESSIONS * ROWS_PER_CONSUMER)) ] ||
    fail "replay read $replay_rows rows, fewer than the $((SESSIONS * ROWS_PER_CONSUMER)) of the history"
[ "$(metric event_piper_replay_queries_total)" -ge "$SESSIONS" ] || fail "fewer replay queries than streams"
assert_eq 0 "$(metric event_piper_requests_rejected_total)" "rejected requests"
assert_eq 0 "$(metric event_piper_held_overflows_total)" "held-event overflows"
assert_eq 0 "$(metric event_piper_sessions_closed_total)" "streams closed during the storm"

# ---- afterwards: one connection ----------------------------------------------

kill -TERM "$storm_pid" "$live_pid"
wait "$storm_pid" "$live_pid" || fail "a client exited with an error"
wait_metric a event_piper_sessions_open = 0 20 # the streams closed
wait_metric a event_piper_replay_pool_connections = 0 20 # the pool went idle
only_listener() {
    [ "$(sql "select count(*) from pg_stat_activity where application_name like 'event-piper%'")" = 1 ]
}
wait_for "PostgreSQL to hold only the LISTEN connection" 10 only_listener
assert_eq $((SESSIONS + 1)) "$(metric event_piper_sessions_closed_total)" "streams closed"
piper_stop a
test_done
