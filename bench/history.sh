#!/usr/bin/env bash
# REST history against the SSE replay, on the same table and service:
#
#   history   GET /events/history pages of 100 rows (random consumer and
#             position), 16 concurrent HTTP/1.1 clients (h2load --h1):
#             requests/s, rows/s, p50/p99 per request, server CPU per row
#   replay    the SSE replay of the same rows: 100 streams, one per consumer,
#             each from Last-Event-ID 0 to its last row: rows/s, server CPU
#             per row
#
#   bench/history.sh            (SMOKE=1: seconds, proves the tools work)
#
# Uses bin/event-piper (or PIPER_BIN), build/tools/sse-client and h2load
# (Debian nghttp2-client); PostgreSQL and the service come from tests/lib.sh.
TEST_NAME=bench-history
METRICS_CHECK=0
source "$(dirname "$0")/../tests/lib.sh"
SMOKE=${SMOKE:-0}
CLK_TCK=$(getconf CLK_TCK)
size() { if [ "$SMOKE" = 1 ]; then echo "$2"; else echo "$1"; fi; }

command -v h2load >/dev/null || fail "h2load is missing: apt-get install nghttp2-client"
[ -x "$SSE_CLIENT" ] || fail "$SSE_CLIENT is missing: make build/tools/sse-client"

consumers=100
per_consumer=$(size 10000 200)
requests=$(size 20000 500)
pg_start
log "loading $((consumers * per_consumer)) rows"
sql "insert into events (type, subscriber, payload)
     select 'bench', 'c' || (g % $consumers), json_build_object('n', g, 'pad', repeat('x', 100))
     from generate_series(1, $((consumers * per_consumer))) g" >/dev/null
sql "vacuum analyze events" >/dev/null
piper_start h LOG_LEVEL=warn MAX_SESSIONS=20000 MAX_STREAMS_PER_IP=0
piper_wait_ready h 10
port=$(piper_port h)
pid=$(piper_pid h)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

# ---- history ----
# Random pages: a consumer and a position among the ids.
max_id=$(sql "select max(id) from events")
awk -v n=2000 -v m="$max_id" -v c="$consumers" -v base="http://127.0.0.1:$port" 'BEGIN {
    srand(1)
    for (i = 0; i < n; i++)
        printf "%s/events/history?consumer_id=c%d&after=%d&limit=100\n", base, int(rand() * c), int(rand() * m)
}' >"$WORK/urls"
ticks=$(cpu_ticks)
start=$(now_us)
h2load --h1 -n "$requests" -c 16 -t 2 -i "$WORK/urls" --log-file="$WORK/h2load.log" \
    >"$WORK/h2load.out" 2>&1 || fail "h2load failed: $(tail -5 "$WORK/h2load.out")"
elapsed_us=$(($(now_us) - start))
ticks=$(($(cpu_ticks) - ticks))
ok=$(awk '$2 == 200' "$WORK/h2load.log" | wc -l)
[ "$ok" -eq "$requests" ] || fail "only $ok of $requests history requests answered 200"
read -r p50 p99 < <(awk '{print $3}' "$WORK/h2load.log" | sort -n |
    awk '{v[NR] = $1} END {print v[int(NR * 0.5)], v[int(NR * 0.99)]}')
history_rps=$((requests * 1000000 / elapsed_us))
cpu_us_per_req=$((ticks * 1000000 / CLK_TCK / requests))
log "history: $history_rps requests/s (pages of up to 100 rows), p50 ${p50} us, p99 ${p99} us, server CPU ${cpu_us_per_req} us per request"

# ---- replay ----
ticks=$(cpu_ticks)
start=$(now_us)
pids=()
for c in $(seq 0 $((consumers - 1))); do
    last=$(sql "select max(id) from events where subscriber = 'c$c'")
    background "$SSE_CLIENT" --port "$port" --consumer "c$c" --last-event-id 0 --until-id "$last" \
        --close-when-done --timeout 300 --quiet
    pids+=("$LAST_PID")
done
for p in "${pids[@]}"; do wait "$p" || fail "a replay client failed"; done
elapsed_us=$(($(now_us) - start))
ticks=$(($(cpu_ticks) - ticks))
total=$((consumers * per_consumer))
replay_rows_s=$((total * 1000000 / elapsed_us))
cpu_ns_per_row=$((ticks * 1000000000 / CLK_TCK / total))
log "replay: $replay_rows_s rows/s over $consumers streams, server CPU ${cpu_ns_per_row} ns per row"

printf '\n| measure | value |\n|---|---|\n'
printf '| history requests/s (pages of 100, 16 clients) | %s |\n' "$history_rps"
printf '| history rows/s (full pages; pages near a consumer'"'"'s end hold fewer) | %s |\n' "$((history_rps * 100))"
printf '| history p50 / p99 per request | %s / %s µs |\n' "$p50" "$p99"
printf '| history server CPU per request | %s µs |\n' "$cpu_us_per_req"
printf '| SSE replay rows/s (%s streams) | %s |\n' "$consumers" "$replay_rows_s"
printf '| SSE replay server CPU per row | %s ns |\n' "$cpu_ns_per_row"
piper_stop h
test_done
