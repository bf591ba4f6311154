#!/usr/bin/env bash
# Three instances behind a real haproxy (examples/haproxy/haproxy.cfg, ports
# rewritten), one PostgreSQL. 300 streams (30 consumers x 10) open through
# haproxy and spread over the three; writers insert a few thousand rows
# while they stream; one instance is killed with SIGKILL in the middle. Its
# streams reconnect through haproxy to the survivors with their last id. At
# the end every stream's output, across its reconnects, must equal its
# consumer's committed rows exactly; the PostgreSQL connections must be one
# per live instance once replays are idle; the survivors' metrics, haproxy's
# view and the clients' reconnect counts must agree.
source "$(dirname "$0")/../lib.sh"

CONSUMERS=30
CLIENTS=5                # sse-client processes
PER_CLIENT=60            # sessions each; session i has consumer i mod 30
SESSIONS=$((CLIENTS * PER_CLIENT))
WRITERS=2                # concurrent psql writers, per phase
TRANSACTIONS=40          # per writer and phase
ROWS_PER_TRANSACTION=20
seed=${LB_SEED:-$RANDOM}
log "seed $seed (LB_SEED=$seed reproduces the writers' rows)"

HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || fail "haproxy not found (Debian package haproxy; .ci/install-deps test installs it)"

pg_start
# PROXY_PROTOCOL=1: the example configuration sends haproxy's send-proxy-v2.
settings=(HEARTBEAT_SECONDS=1 REPLAY_IDLE_SECONDS=1 RETRY_MS=250 PROXY_PROTOCOL=1)
for p in p1 p2 p3; do piper_start "$p" "${settings[@]}"; done
for p in p1 p2 p3; do piper_wait_ready "$p"; done

# ---- haproxy ----------------------------------------------------------------

lb_port=$(free_port)
stats_port=$(free_port)
while [ "$stats_port" = "$lb_port" ]; do stats_port=$(free_port); done
cfg="$WORK/haproxy.cfg"
sed -e "s/^\([[:space:]]*bind\) :4000\$/\1 127.0.0.1:$lb_port/" \
    -e "s/ 127\.0\.0\.1:4001\$/ 127.0.0.1:$(piper_port p1)/" \
    -e "s/ 127\.0\.0\.1:4002\$/ 127.0.0.1:$(piper_port p2)/" \
    -e "s/ 127\.0\.0\.1:4003\$/ 127.0.0.1:$(piper_port p3)/" \
    "$ROOT/examples/haproxy/haproxy.cfg" >"$cfg"
for port in "$lb_port" "$(piper_port p1)" "$(piper_port p2)" "$(piper_port p3)"; do
    grep -q "127\.0\.0\.1:$port\$" "$cfg" || fail "examples/haproxy/haproxy.cfg no longer has the lines this test rewrites"
done
# Test only: haproxy's own view of the servers, as CSV.
cat >>"$cfg" <<EOF

listen stats
    bind 127.0.0.1:$stats_port
    stats enable
    stats uri /stats
EOF
"$HAPROXY" -c -q -f "$cfg" || fail "haproxy refuses the configuration $cfg"
hap_log="$ARTIFACTS/$TEST_NAME.haproxy.log"
# -db: in the foreground; its warnings (a server going down...) go to the log.
background "$HAPROXY" -f "$cfg" -db >"$hap_log" 2>&1
hap_pid=$LAST_PID
PIPER_LOGS["haproxy"]=$hap_log # printed on failure with the instances' logs

# hap_field SERVER COLUMN: a column of haproxy's CSV statistics for a server
# of backend pipers (p1 is piper1, and so on).
hap_field() {
    curl -fs "http://127.0.0.1:$stats_port/stats;csv" | awk -F, -v sv="piper${1#p}" -v col="$2" '
        NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) idx[$i] = i; next }
        $1 == "pipers" && $2 == sv { print $(idx[col]) }'
}
hap_up() { [ "$(hap_field "$1" status)" = UP ]; }
hap_down() { case "$(hap_field "$1" status)" in DOWN*) ;; *) return 1 ;; esac; }

for p in p1 p2 p3; do wait_for "haproxy to see $p UP" 10 hap_up "$p"; done

# ---- helpers ----------------------------------------------------------------

metrics() { piper_metrics "$1"; }
metric() { piper_metric "$1" "$2"; }
sum_metric() { # NAME INSTANCE...
    local name=$1 total=0 p
    shift
    for p in "$@"; do total=$((total + $(metric "$p" "$name"))); done
    echo "$total"
}

consumer_list=$(for i in $(seq 0 $((CONSUMERS - 1))); do printf 'c%02d,' "$i"; done)
consumer_list=${consumer_list%,}

# PostgreSQL sessions other than the one asking: the instances' connections
# when no psql writer runs.
pg_clients() {
    sql "select count(*) from pg_stat_activity where backend_type = 'client backend'
         and datname = current_database() and pid <> pg_backend_pid()"
}
pg_clients_is() { [ "$(pg_clients)" = "$1" ]; }
replays_idle() { # INSTANCE
    [ "$(metric "$1" event_piper_replay_pool_connections)" = 0 ] &&
        [ "$(metric "$1" event_piper_replay_jobs)" = 0 ]
}
# check_connections INSTANCE...: once the replay pools have closed their idle
# connections, PostgreSQL holds exactly one connection (the LISTEN one) per
# live instance.
check_connections() {
    local p n=$#
    for p in "$@"; do wait_for "$p's replay pool to go idle" 15 replays_idle "$p"; done
    # A closed connection's backend leaves pg_stat_activity a moment later.
    if ! within 10 pg_clients_is "$n"; then
        sql "select pid, application_name, state, backend_start from pg_stat_activity
             where backend_type = 'client backend' and pid <> pg_backend_pid()" >&2
        fail "$(pg_clients) PostgreSQL connections from $n idle instances, expected $n"
    fi
    assert_eq "$n" "$(sql "select count(*) from pg_stat_activity
        where application_name = 'event-piper listener'")" "LISTEN connections"
    log "PostgreSQL connections with $n instances, replays idle: $n"
}

wait_until() { # DESCRIPTION SECONDS COMMAND...
    local what=$1
    shift
    within "$@" || fail "timed out after ${1}s waiting for $what"
}

# writer_sql N: one writer's transactions; each inserts for random consumers
# in sorted order (the rule that keeps concurrent writers from deadlocking)
# and the writer pauses a little between transactions, so that inserts keep
# flowing while an instance dies.
writer_sql() {
    awk -v seed="$((seed * 16 + $1))" -v w="$1" -v n="$TRANSACTIONS" -v rows="$ROWS_PER_TRANSACTION" \
        -v consumers="$CONSUMERS" 'BEGIN {
        srand(seed)
        q = sprintf("%c", 39)
        for (t = 1; t <= n; t++) {
            for (r = 1; r <= rows; r++) pick[r] = int(rand() * consumers)
            for (i = 2; i <= rows; i++)
                for (j = i; j > 1 && pick[j - 1] > pick[j]; j--) {
                    k = pick[j]; pick[j] = pick[j - 1]; pick[j - 1] = k
                }
            print "BEGIN;"
            for (r = 1; r <= rows; r++)
                printf "INSERT INTO events (type, subscriber, payload) VALUES (%slb%s, %sc%02d%s, %s{\"w\": %d, \"t\": %d, \"r\": %d}%s);\n",
                    q, q, q, pick[r], q, q, w, t, r, q
            print "COMMIT;"
            print "SELECT pg_sleep(0.03);"
        }
    }'
}
declare -a writer_pids=()
start_writers() { # PHASE
    local w
    for w in $(seq 1 "$WRITERS"); do
        writer_sql "$(($1 * 10 + w))" >"$WORK/writer$1.$w.sql"
        background psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -f "$WORK/writer$1.$w.sql" -o /dev/null
        writer_pids+=("$LAST_PID")
    done
}
rows_at_least() { [ "$(sql "select count(*) from events")" -ge "$1" ]; }

# ---- 300 streams through haproxy ------------------------------------------

# A few rows first, so that every stream starts with a replay (Last-Event-ID 0).
sql "insert into events (type, subscriber, payload)
     select 'seed', format('c%s', lpad(c::text, 2, '0')), format('{\"n\": %s}', n)::jsonb
     from generate_series(0, $((CONSUMERS - 1))) c, generate_series(1, 3) n order by c, n" >/dev/null
seeded=$(sql "select count(*) from events")

mkdir -p "$WORK/streams"
declare -a client_pids=()
for k in $(seq 0 $((CLIENTS - 1))); do
    # --reconnect: after a lost connection, reconnect (after the retry: delay
    # the service sends, RETRY_MS) with Last-Event-ID set to the last id seen.
    # The client exits by itself on a status other than 200 (status 2), a
    # malformed stream (3) or an id not above the previous one, reconnects
    # included (4).
    background "$SSE_CLIENT" --port "$lb_port" --consumers "$consumer_list" --sessions "$PER_CLIENT" \
        --last-event-id 0 --reconnect --out "$WORK/streams/$k" 2>"$ARTIFACTS/$TEST_NAME.client$k.log"
    client_pids+=("$LAST_PID")
done
# A client that exits has met something it refuses (see above): stop there.
clients_alive() {
    local k
    for k in "${!client_pids[@]}"; do
        kill -0 "${client_pids[$k]}" 2>/dev/null && continue
        grep -v '^session [0-9]* consumer=' "$ARTIFACTS/$TEST_NAME.client$k.log" | tail -n 20 >&2
        fail "sse-client $k exited (its messages are above)"
    done
}
all_open() { clients_alive && [ "$(sum_metric event_piper_sessions_open p1 p2 p3)" = "$SESSIONS" ]; }
wait_until "$SESSIONS streams open on the instances" 30 all_open
declare -A open_before
for p in p1 p2 p3; do
    open_before[$p]=$(metric "$p" event_piper_sessions_open)
    [ "${open_before[$p]}" -gt 0 ] || fail "haproxy gave no stream to $p"
done
log "streams per instance: p1=${open_before[p1]} p2=${open_before[p2]} p3=${open_before[p3]}"

check_connections p1 p2 p3

# ---- inserts, and a SIGKILL in the middle ----------------------------------

per_phase=$((WRITERS * TRANSACTIONS * ROWS_PER_TRANSACTION))
start_writers 1
wait_for "the first third of the writers' rows" 30 rows_at_least $((seeded + per_phase / 3))

victim=p2
# Nothing opens or closes streams now, so these stay what they were.
victim_open=$(metric "$victim" event_piper_sessions_open)
victim_opened=$(metric "$victim" event_piper_sessions_opened_total)
victim_delivered=$(metric "$victim" event_piper_events_delivered_total)
piper_kill "$victim"
killed_at=$(date +%s%N)
rows_at_kill=$(sql "select count(*) from events")
running=0
for pid in "${writer_pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=$((running + 1)); done
log "SIGKILL to $victim ($victim_open streams) at $rows_at_kill rows, $running writer(s) still inserting"

start_writers 2 # inserts go on after the kill
wait_for "haproxy to mark $victim DOWN" 10 hap_down "$victim"
survivors_hold_all() { clients_alive && [ "$(sum_metric event_piper_sessions_open p1 p3)" = "$SESSIONS" ]; }
wait_until "the $victim_open streams of $victim to reopen on p1 and p3" 30 survivors_hold_all
log "all streams open again $((($(date +%s%N) - killed_at) / 1000000)) ms after the kill"
for pid in "${writer_pids[@]}"; do wait "$pid" || fail "a writer failed"; done
total=$(sql "select count(*) from events")
assert_eq $((seeded + 2 * per_phase)) "$total" "rows committed"
log "$total rows committed, $((total - rows_at_kill)) of them after the kill"

# ---- every stream exact -----------------------------------------------------

sql "select subscriber, id from events order by subscriber, id" | tr '|' ' ' >"$WORK/expected"
session_files=()
for k in $(seq 0 $((CLIENTS - 1))); do
    for i in $(seq 0 $((PER_CLIENT - 1))); do session_files+=("$WORK/streams/$k/$i.events"); done
done
# compare_streams MODE: MODE "last" lists the sessions whose last id is not
# yet their consumer's last row; MODE "all" lists those whose whole sequence
# of ids differs from their consumer's rows. Prints nothing when all are fine.
compare_streams() {
    awk -v mode="$1" -v consumers="$CONSUMERS" '
        FILENAME == ARGV[1] { want[$1] = want[$1] "," $2; last[$1] = $2; next }
        { got[FILENAME] = got[FILENAME] "," $1; top[FILENAME] = $1 + 0 }
        END {
            for (a = 2; a < ARGC; a++) {
                f = ARGV[a]
                n = split(f, parts, "/"); sub(/\.events$/, "", parts[n])
                c = sprintf("c%02d", (parts[n] + 0) % consumers)
                if (mode == "last" && (!(f in top) || top[f] != last[c] + 0))
                    printf "%s %s at %s of %s\n", f, c, (f in top) ? top[f] : "-", last[c]
                if (mode == "all" && got[f] != want[c])
                    printf "%s %s\n", f, c
            }
        }' "$WORK/expected" "${session_files[@]}"
}
caught_up() { clients_alive && [ -z "$(compare_streams last)" ]; }
if ! within 60 caught_up; then
    compare_streams last | head -20 >&2
    fail "$(compare_streams last | wc -l) streams did not reach their consumer's last row"
fi
bad=$(compare_streams all)
if [ -n "$bad" ]; then
    echo "$bad" | head -20 >&2
    read -r f c <<<"$(echo "$bad" | head -1)"
    diff <(awk -v c="$c" '$1 == c { print $2 }' "$WORK/expected") <(cut -f1 "$f") | head -20 >&2
    fail "$(echo "$bad" | wc -l) streams differ from their consumer's committed rows"
fi
lines=$(cat "${session_files[@]}" | wc -l)
log "all $SESSIONS streams exact ($lines events)"
clients_alive

# ---- connections, metrics and haproxy's view after the kill ----------------

check_connections p1 p3

for p in p1 p3; do
    open=$(metric "$p" event_piper_sessions_open)
    opened=$(metric "$p" event_piper_sessions_opened_total)
    closed=$(metric "$p" event_piper_sessions_closed_total)
    assert_eq 0 "$closed" "$p: streams closed (nobody left a survivor)"
    assert_eq "$opened" "$open" "$p: streams opened = streams open"
    assert_eq "$open" "$(hap_field "$p" scur)" "$p: haproxy's current sessions = the instance's streams"
    assert_eq "$total" "$(metric "$p" event_piper_events_received_total)" "$p: notifications received = rows"
    assert_eq 0 "$(metric "$p" event_piper_listener_reconnects_total)" "$p: listener reconnects"
    assert_eq 1 "$(metric "$p" event_piper_listener_connected)" "$p: listener connected"
    assert_eq 0 "$(metric "$p" event_piper_requests_rejected_total)" "$p: rejected requests"
    assert_eq 0 "$(metric "$p" event_piper_events_invalid_total)" "$p: invalid events"
    assert_eq 0 "$(metric "$p" event_piper_held_overflows_total)" "$p: held-event overflows"
done
assert_eq 0 "$(hap_field "$victim" scur)" "haproxy's current sessions on $victim"
survivors_open=$(sum_metric event_piper_sessions_open p1 p3)
survivors_opened=$(sum_metric event_piper_sessions_opened_total p1 p3)
survivors_delivered=$(sum_metric event_piper_events_delivered_total p1 p3)
assert_eq "$SESSIONS" "$survivors_open" "streams open on the survivors"
assert_eq $((open_before[p1] + open_before[p3] + victim_open)) "$survivors_opened" \
    "streams opened on the survivors: their own plus every stream of $victim"
assert_eq "$victim_open" "$victim_opened" "$victim: streams opened before the kill"

# The clients' side: summary lines "session <i> consumer=<c> events=<n>
# last_id=<id> reconnects=<r>" at exit.
client_logs=()
for k in "${!client_pids[@]}"; do
    client_logs+=("$ARTIFACTS/$TEST_NAME.client$k.log")
    kill -TERM "${client_pids[$k]}"
    status=0
    wait "${client_pids[$k]}" || status=$?
    [ "$status" = 0 ] || { grep -v '^session [0-9]* consumer=' "${client_logs[$k]}" | tail -n 20 >&2; fail "sse-client $k exited with status $status"; }
done
summaries() { awk '$1 == "session" && $3 ~ /^consumer=/ && $6 ~ /^reconnects=/' "${client_logs[@]}"; }
assert_eq "$SESSIONS" "$(summaries | wc -l)" "session summaries from the clients"
reconnects=$(summaries | awk '{ split($6, a, "="); s += a[2] } END { print s + 0 }')
moved=$(summaries | awk '$6 == "reconnects=1"' | wc -l)
assert_eq "$victim_open" "$reconnects" "client reconnects: one per stream of $victim"
assert_eq "$victim_open" "$moved" "streams that reconnected once"

# Each event a stream received was written by exactly one instance: the
# survivors wrote all of them but those $victim wrote (at least as many as
# it had written just before the kill), and at least all those of the
# streams that never left them.
stay_events=$(summaries | awk '$6 == "reconnects=0" { split($4, a, "="); s += a[2] } END { print s + 0 }')
[ "$survivors_delivered" -le $((lines - victim_delivered)) ] ||
    fail "survivors delivered $survivors_delivered events, more than the $lines received minus $victim_delivered from $victim"
[ "$survivors_delivered" -ge "$stay_events" ] ||
    fail "survivors delivered $survivors_delivered events, fewer than the $stay_events of the streams that stayed on them"

# The clients are gone: haproxy must close their streams on the instances
# too (at the latest when the next heartbeat finds the client side closed).
survivors_empty() { [ "$(sum_metric event_piper_sessions_open p1 p3)" = 0 ]; }
wait_for "the survivors' streams to close after the clients left" 10 survivors_empty
assert_eq "$SESSIONS" "$(sum_metric event_piper_sessions_closed_total p1 p3)" "streams closed on the survivors"
for p in p1 p3; do
    assert_eq "$(metric "$p" event_piper_sessions_opened_total)" \
        "$(metrics "$p" | awk '$1 == "event_piper_sessions_closed_total{reason=\"client_gone\"}" { print $2 }')" \
        "$p: streams closed as client_gone"
done
grep -q 'msg="session opened".* peer=127.0.0.1 port=[0-9]* transport=http1 forwarded_for=127.0.0.1' "$(piper_log p1)" ||
    fail "p1 did not log the client address haproxy forwarded (option forwardfor)"
log "haproxy: $(hap_field "$victim" wretr) retries and $(hap_field "$victim" wredis) redispatches away from $victim"

piper_stop p1
piper_stop p3
stop_quietly "$hap_pid"
test_done
