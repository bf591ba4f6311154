#!/usr/bin/env bash
# Last-Event-ID replay: the consumer's rows after the id, in order, then live
# with no gap and no duplicate at the hand-over, even while writers keep
# inserting during the replay. Replay pages run on a small bounded pool that
# is returned between pages and closes when idle, leaving one connection.
source "$(dirname "$0")/../lib.sh"

pg_start
piper_start a REPLAY_PAGE_ROWS=7 REPLAY_POOL_SIZE=2 REPLAY_IDLE_SECONDS=1
piper_wait_ready a
port=$(piper_port a)

# ids_of SUBSCRIBER AFTER_ID [UNTIL_ID]: the committed ids, in order.
ids_of() {
    sql "select id from events where subscriber = '$1' and id > $2 and id <= ${3:-9223372036854775807} order by id"
}
# received FILE: the ids a client wrote, in order.
received() { cut -f1 "$1"; }

# writer NAME SUBSCRIBER ROWS: inserts ROWS rows, one transaction each.
writer() {
    local i
    for i in $(seq 1 "$3"); do
        echo "insert into events (type, subscriber, payload) values ('w', '$2', '{\"writer\": \"$1\", \"i\": $i}');"
    done | psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 >/dev/null
}

for i in $(seq 1 30); do
    insert_event toto seed "{\"i\": $i}" >/dev/null
    insert_event titi seed "{\"i\": $i}" >/dev/null
done

# 1. Replay from an id, lower-case header name (as some clients send it).
max=$(sql "select max(id) from events where subscriber = 'toto'")
"$SSE_CLIENT" --port "$port" --consumer toto --header "last-event-id: 5" --until-id "$max" \
    --timeout 10 --quiet --out "$WORK/r1"
assert_eq "$(ids_of toto 5)" "$(received "$WORK/r1/0.events")" "replay from 5"
assert_eq '{"i":1}' "$(sql "select payload::text from events where id = 1" | tr -d ' ')" "payload check"

# 2. Hand-over under concurrent writers: sessions resume from several points
#    while 8 writers insert for toto and others; afterwards every session
#    must hold exactly the committed rows after its start id.
mkdir -p "$WORK/h"
starts=(0 3 17 40 59)
pids=()
for s in "${starts[@]}"; do
    background "$SSE_CLIENT" --port "$port" --consumer toto --last-event-id "$s" \
        --until-id 999999999 --quiet --out "$WORK/h/$s"
    pids+=("$LAST_PID")
done
for w in $(seq 1 8); do
    subscriber=toto
    [ $((w % 3)) = 0 ] && subscriber=titi
    background writer "w$w" "$subscriber" 150
    writers+=("$LAST_PID")
done
# More sessions join while the writers run, each resuming from a recent id:
# one after each further 100 of the writers' 1,200 rows.
rows_at_least() { [ "$(sql "select count(*) from events")" -ge "$1" ]; }
rows=$(sql "select count(*) from events")
for n in 1 2 3; do
    wait_for "the writers' next 100 rows" 20 rows_at_least $((rows + 100 * n))
    s=$(sql "select coalesce(max(id), 0) - 20 from events where subscriber = 'toto'")
    starts+=("$s")
    background "$SSE_CLIENT" --port "$port" --consumer toto --last-event-id "$s" \
        --until-id 999999999 --quiet --out "$WORK/h/$s"
    pids+=("$LAST_PID")
done
for pid in "${writers[@]}"; do wait "$pid"; done
marker=$(insert_event toto marker '{"last": true}')
for s in "${starts[@]}"; do
    wait_for "session from $s to reach the marker" 20 grep -q "^$marker	" "$WORK/h/$s/0.events"
done
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
for s in "${starts[@]}"; do
    expected=$(ids_of toto "$s" "$marker")
    got=$(received "$WORK/h/$s/0.events")
    [ "$expected" == "$got" ] || {
        diff <(echo "$expected") <(echo "$got") | head -20 >&2
        fail "session resuming from $s: stream differs from the table"
    }
done
log "hand-over exact for ${#starts[@]} sessions over $(ids_of toto 0 "$marker" | wc -l) rows"

# 3. A Last-Event-ID past every id the database handed out (a restored
#    database): a history-gone signal (reason unknown_cursor), the newest
#    row, then live events. The row is inserted once the service has said so.
offset=$(log_size a)
newest=$(sql "select max(id) from events where subscriber = 'toto'")
background "$SSE_CLIENT" --port "$port" --consumer toto --last-event-id 999999 \
    --count 2 --quiet --out "$WORK/future"
wait_log a 'msg="history gone".*last_event_id=999999.*reason=unknown_cursor' 10 "$offset"
late=$(insert_event toto late '{"x": 1}')
wait_for "the live event after the newest row" 5 grep -q "^$late	" "$WORK/future/0.events"
assert_eq "$(printf '\n%s\n%s' "$newest" "$late")" "$(received "$WORK/future/0.events")" \
    "the signal, the newest row, the live event"

# 4. The pool stays within REPLAY_POOL_SIZE and closes when idle: 20
#    simultaneous replays, sampled connections never above 1 + 2.
count_connections() {
    sql "select count(*) from pg_stat_activity where application_name like 'event-piper%'"
}
for n in $(seq 1 20); do
    background "$SSE_CLIENT" --port "$port" --consumer toto --last-event-id 0 \
        --until-id "$late" --quiet --out "$WORK/pool$n"
    pids+=("$LAST_PID")
done
# Sampled until every replay has reached the last row.
peak=0
sample_until_replayed() {
    local c n
    c=$(count_connections)
    [ "$c" -gt "$peak" ] && peak=$c
    for n in $(seq 1 20); do grep -q "^$late	" "$WORK/pool$n/0.events" 2>/dev/null || return 1; done
}
within 20 sample_until_replayed || true # the waits below name a replay that did not finish
[ "$peak" -le 3 ] || fail "$peak connections seen with REPLAY_POOL_SIZE=2"
for n in $(seq 1 20); do
    wait_for "pooled replay $n" 20 grep -q "^$late	" "$WORK/pool$n/0.events"
done
only_listener() { [ "$(count_connections)" = 1 ]; }
wait_for "idle replay connections to close" 10 only_listener
assert_eq "event-piper listener" "$(sql "select application_name from pg_stat_activity where application_name like 'event-piper%'")" "the one remaining connection"
piper_stop a
test_done
