#!/usr/bin/env bash
# Ordering under fire: 8 concurrent writers insert for 20 consumers in random
# transaction sizes, some rolled back, while 60 streams keep disconnecting at
# random moments and resuming with their last id. At the end each stream's
# concatenated output must equal its consumer's committed rows exactly: in id
# order, nothing missing, nothing twice.
source "$(dirname "$0")/../lib.sh"

WRITERS=8
CONSUMERS=20
SESSIONS=60
TRANSACTIONS=${CHAOS_TRANSACTIONS:-600}
seed=${CHAOS_SEED:-$RANDOM}
log "seed $seed (CHAOS_SEED=$seed reproduces the writers' and the streams' choices)"

pg_start
piper_start a REPLAY_PAGE_ROWS=16 REPLAY_POOL_SIZE=3 HEARTBEAT_SECONDS=1
piper_wait_ready a
port=$(piper_port a)

# writer_script N: SQL for one writer; subscribers within a transaction are
# inserted in sorted order, the documented rule that prevents deadlocks.
writer_script() {
    awk -v seed="$((seed + $1))" -v n="$TRANSACTIONS" -v consumers="$CONSUMERS" -v w="$1" 'BEGIN {
        srand(seed)
        for (t = 1; t <= n; t++) {
            rows = 1 + int(rand() * 6)
            for (r = 1; r <= rows; r++) pick[r] = sprintf("c%02d", int(rand() * consumers))
            for (i = 2; i <= rows; i++)          # insertion sort: mawk has no asort
                for (j = i; j > 1 && pick[j - 1] > pick[j]; j--) {
                    tmp = pick[j]; pick[j] = pick[j - 1]; pick[j - 1] = tmp
                }
            print "BEGIN;"
            for (r = 1; r <= rows; r++)
                printf "INSERT INTO events (type, subscriber, payload) VALUES (%s, %s, %s);\n",
                    "'"'"'chaos'"'"'", "'"'"'" pick[r] "'"'"'",
                    "'"'"'{\"w\": " w ", \"t\": " t ", \"r\": " r "}'"'"'"
            print (rand() < 0.1 ? "ROLLBACK;" : "COMMIT;")
        }
    }'
}

consumer_list=$(for i in $(seq 0 $((CONSUMERS - 1))); do printf 'c%02d,' "$i"; done)
consumer_list=${consumer_list%,}
background "$SSE_CLIENT" --port "$port" --consumers "$consumer_list" --sessions "$SESSIONS" \
    --last-event-id 0 --chaos 20:300 --retry-ms 5 --seed "$seed" --out "$WORK/streams" --quiet
client=$LAST_PID
wait_log a 'msg="session opened"' 10 0 "$SESSIONS"

writers=()
for w in $(seq 1 "$WRITERS"); do
    writer_script "$w" >"$WORK/writer$w.sql"
    background psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -f "$WORK/writer$w.sql" -o /dev/null
    writers+=("$LAST_PID")
done
for pid in "${writers[@]}"; do wait "$pid" || fail "a writer failed"; done
committed=$(sql "select count(*) from events")
log "$committed rows committed by $WRITERS writers"

# One last row per consumer marks the end of its stream.
declare -A marker
for i in $(seq 0 $((CONSUMERS - 1))); do
    c=$(printf 'c%02d' "$i")
    marker[$c]=$(insert_event "$c" marker '{"end": true}')
done
for s in $(seq 0 $((SESSIONS - 1))); do
    c=$(printf 'c%02d' $((s % CONSUMERS)))
    wait_for "stream $s ($c) to reach its marker" 60 grep -q "^${marker[$c]}	" "$WORK/streams/$s.events"
done
kill -0 "$client" || fail "the client stopped (protocol or order violation?)"
kill "$client"
wait "$client" 2>/dev/null || true

reconnects=$(grep -c 'session opened' "$(piper_log a)")
for s in $(seq 0 $((SESSIONS - 1))); do
    c=$(printf 'c%02d' $((s % CONSUMERS)))
    expected=$(sql "select id from events where subscriber = '$c' order by id")
    got=$(cut -f1 "$WORK/streams/$s.events")
    [ "$expected" == "$got" ] || {
        diff <(echo "$expected") <(echo "$got") | head -20 >&2
        fail "stream $s ($c) differs from its committed rows"
    }
done
log "all $SESSIONS streams exact over $reconnects connections"
[ "$reconnects" -gt $((SESSIONS * 10)) ] || fail "too few disconnects ($reconnects) to call this chaos"
piper_stop a
test_done
