#!/usr/bin/env bash
# The Spring WebClient example (examples/spring, the jar make builds) behind
# a real haproxy (examples/haproxy/haproxy.cfg, only the ports rewritten) in
# front of three instances. It starts after a given Last-Event-ID through
# haproxy (replay, then live events); once it is printing a writer's live
# rows, the instance that serves it is killed with SIGKILL, and rows keep
# being committed. The client must reconnect through haproxy to a survivor
# with the last id it printed and end with exactly its consumer's rows after
# its starting id: same ids, types and compact JSON data, in order, nothing
# twice.
source "$(dirname "$0")/../lib.sh"

HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || fail "haproxy not found (Debian package haproxy; .ci/install-deps test installs it)"
[ -f "$SPRING_JAR" ] || fail "no $SPRING_JAR (make examples builds it)"

pg_start
# PROXY_PROTOCOL=1: the example configuration sends haproxy's send-proxy-v2.
settings=(RETRY_MS=200 HEARTBEAT_SECONDS=1 PROXY_PROTOCOL=1)
for p in p1 p2 p3; do piper_start "$p" "${settings[@]}"; done
for p in p1 p2 p3; do piper_wait_ready "$p"; done

# ---- haproxy ----------------------------------------------------------------

lb_port=$(free_port)
cfg="$WORK/haproxy.cfg"
sed -e "s/^\([[:space:]]*bind\) :4000\$/\1 127.0.0.1:$lb_port/" \
    -e "s/ 127\.0\.0\.1:4001\$/ 127.0.0.1:$(piper_port p1)/" \
    -e "s/ 127\.0\.0\.1:4002\$/ 127.0.0.1:$(piper_port p2)/" \
    -e "s/ 127\.0\.0\.1:4003\$/ 127.0.0.1:$(piper_port p3)/" \
    "$ROOT/examples/haproxy/haproxy.cfg" >"$cfg"
for port in "$lb_port" "$(piper_port p1)" "$(piper_port p2)" "$(piper_port p3)"; do
    grep -q "127\.0\.0\.1:$port\$" "$cfg" || fail "examples/haproxy/haproxy.cfg no longer has the lines this test rewrites"
done
"$HAPROXY" -c -q -f "$cfg" || fail "haproxy refuses the configuration $cfg"
hap_log="$ARTIFACTS/$TEST_NAME.haproxy.log"
background "$HAPROXY" -f "$cfg" -db >"$hap_log" 2>&1
PIPER_LOGS["haproxy"]=$hap_log # printed on failure with the instances' logs
wait_for "haproxy to answer" 10 curl -fs "http://127.0.0.1:$lb_port/readyz"

# ---- rows -------------------------------------------------------------------

# batch LABEL [N]: a transaction of N (7) rows for the client's consumer and
# one for someone else.
batch() {
    sql "insert into events (type, subscriber, payload)
         select case when n % 3 = 0 then 'order' else 'insert' end, 'app',
                jsonb_build_object('batch', '$1', 'n', n, 'text', 'ünïcode \"and\" \\\\ slash')
         from generate_series(1, ${2:-7}) n order by n;
         insert into events (type, subscriber, payload) values ('insert', 'other', '{\"no\": true}')" >/dev/null
}
# writer PHASE: 30 transactions of 3 rows, 30 ms apart, in the background.
writer() {
    local t
    for t in $(seq 1 30); do
        echo "begin;"
        echo "insert into events (type, subscriber, payload)
              select 'insert', 'app', jsonb_build_object('phase', $1, 't', $t, 'r', r) from generate_series(1, 3) r order by r;"
        echo "commit;"
        echo "select pg_sleep(0.03);"
    done >"$WORK/writer$1.sql"
    background psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -f "$WORK/writer$1.sql" -o /dev/null
}

batch history
start_after=$(sql "select id from events where subscriber = 'app' order by id offset 2 limit 1")

# ---- the Spring client through haproxy --------------------------------------

background java -jar "$SPRING_JAR" --piper.url="http://127.0.0.1:$lb_port" --piper.consumer=app \
    --piper.last-event-id="$start_after" >"$WORK/spring.out" 2>"$ARTIFACTS/$TEST_NAME.spring.log"
spring_pid=$LAST_PID
spring_alive() {
    kill -0 "$spring_pid" 2>/dev/null && return 0
    tail -n 20 "$ARTIFACTS/$TEST_NAME.spring.log" >&2
    fail "the Spring client exited (its log is above)"
}
open_on() { piper_metric "$1" event_piper_sessions_open; }
# serving INSTANCE...: prints the one instance with the client's stream.
serving() {
    local p found=""
    for p in "$@"; do
        case "$(open_on "$p")" in
            0) ;;
            1) [ -z "$found" ] || return 1; found=$p ;;
            *) return 1 ;;
        esac
    done
    [ -n "$found" ] && echo "$found"
}
connected() { spring_alive && serving "$@"; }
printed() { wc -l <"$WORK/spring.out"; }
printed_at_least() { spring_alive && [ "$(printed)" -ge "$1" ]; }

within 90 connected p1 p2 p3 || fail "the Spring client did not connect through haproxy"
victim=$(serving p1 p2 p3)
replayed=$(sql "select count(*) from events where subscriber = 'app' and id > $start_after")
within 20 printed_at_least "$replayed" || fail "the Spring client did not print the $replayed replayed events"
log "the Spring client is on $victim and printed the $replayed events replayed after id $start_after"
batch live
within 20 printed_at_least $((replayed + 7)) || fail "the Spring client did not print the live batch"

# ---- a SIGKILL while the writer commits -------------------------------------

writer 1
writer1=$LAST_PID
within 20 printed_at_least $((replayed + 7 + 15)) || fail "the Spring client did not print the writer's rows"
printed_before=$(printed)
piper_kill "$victim"
log "SIGKILL to $victim after the client printed $printed_before events"
writer 2
writer2=$LAST_PID
survivors=()
for p in p1 p2 p3; do [ "$p" = "$victim" ] || survivors+=("$p"); done
within 30 connected "${survivors[@]}" || fail "the Spring client did not reconnect to ${survivors[*]}"
now_on=$(serving "${survivors[@]}")
wait "$writer1" || fail "writer 1 failed"
wait "$writer2" || fail "writer 2 failed"
batch after

# ---- exact ------------------------------------------------------------------

expected_events app "$start_after" >"$WORK/expected"
want=$(wc -l <"$WORK/expected")
last_id=$(tail -1 "$WORK/expected" | cut -f1)
has_all() { spring_alive && [ "$(tail -1 "$WORK/spring.out" | cut -f1)" = "$last_id" ]; }
within 20 has_all || fail "the Spring client did not receive id $last_id"
if ! cmp -s "$WORK/expected" "$WORK/spring.out"; then
    diff "$WORK/expected" "$WORK/spring.out" | head -20 >&2
    fail "the Spring client did not receive exactly its consumer's rows after id $start_after"
fi
# It resumed on the survivor with the id of the last event it had printed.
resumed_after=$(sed -n 's/.*msg="\{0,1\}session opened"\{0,1\}.* last_event_id="\{0,1\}\([0-9]*\)"\{0,1\}$/\1/p' "$(piper_log "$now_on")")
[ -n "$resumed_after" ] || fail "$now_on logged no stream resumed with Last-Event-ID"
[ "$resumed_after" -gt "$start_after" ] || fail "the client resumed on $now_on after id $resumed_after"
grep -q "^$resumed_after	" "$WORK/spring.out" || fail "the client resumed after id $resumed_after, an id it never printed"
log "Spring: $want events exact through haproxy; resumed on $now_on after id $resumed_after when $victim was killed"
for p in "${survivors[@]}"; do piper_stop "$p"; done
test_done
