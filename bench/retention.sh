#!/usr/bin/env bash
# Retention under load (issue 19): prune ROWS old rows while STREAMS streams
# on as many consumers receive RATE events/s, then compare the batch delete
# with dropping a time partition of the same rows.
#
#   make build build/tools/sse-client build/bench/producer
#   bench/retention.sh           10,000,000 rows, 1,000 streams, 2,000 events/s
#   SMOKE=1 bench/retention.sh   the same shrunk to seconds: proves the script
#                                works, asserts no number
#
# Sizes can be set: ROWS, STREAMS, RATE, BATCH_ROWS (RETENTION_BATCH_ROWS),
# BATCH_PAUSE_MS (RETENTION_BATCH_PAUSE_MS), PART_ROWS (rows of the
# partitioning comparison; default 1,000,000, SMOKE 5,000), FIRST (seconds
# from the service's start to its first retention run: the streams'
# connections and the baseline must fit in it; default 40, SMOKE 8).
#
# 1. History: ROWS rows a day old, loaded with the triggers off (ids from the
#    sequence in order, as the trigger would draw them for one writer), then
#    VACUUM ANALYZE: a table in its steady state.
# 2. One instance, RETENTION_SECONDS=3600 (every loaded row is due) and
#    RETENTION_INTERVAL_SECONDS=FIRST: its first run starts FIRST seconds
#    after it connects. Meanwhile STREAMS streams connect, two producers
#    start (single-row transactions, RATE in all, the latency scenario's
#    load of bench/run.sh) and a first set of clients measures the
#    INSERT-to-client latency without pruning (baseline). A second set of
#    clients replaces it and measures while the run prunes every row; the
#    table's size is sampled each second.
# 3. Bloat: sizes right after the run, after autovacuum (if it runs within
#    AUTOVACUUM_WAIT seconds), after a VACUUM, and after GROW seconds more of
#    the live load: deleted space is reused by new rows, so the heap stays
#    put instead of growing by what was inserted.
# 4. Partitioning, on throwaway tables: PART_ROWS rows deleted by the same
#    batch statement as the service's (keyset on the timestamp index) vs a
#    DROP of a partition holding the same rows: time, WAL written, size.
#
# The service's log is tests/artifacts/bench-retention.prune.log.
TEST_NAME=bench-retention
METRICS_CHECK=0 # numbers only: the tests check the exposition format
source "$(dirname "$0")/../tests/lib.sh"
PRODUCER=$ROOT/build/bench/producer
SMOKE=${SMOKE:-0}
size() { if [ "$SMOKE" = 1 ]; then echo "$2"; else echo "$1"; fi; }
ROWS=${ROWS:-$(size 10000000 20000)}
STREAMS=${STREAMS:-$(size 1000 20)}
RATE=${RATE:-$(size 2000 100)}
BATCH_ROWS=${BATCH_ROWS:-5000}
BATCH_PAUSE_MS=${BATCH_PAUSE_MS:-0}
PART_ROWS=${PART_ROWS:-$(size 1000000 5000)}
FIRST=${FIRST:-$(size 40 8)} # seconds from connecting to the first run
BASE=$(size 15 2)            # seconds of baseline latency
AUTOVACUUM_WAIT=$(size 300 5)
GROW=$(size 30 2)
CHUNK=1000000                # rows per INSERT of the history
RESULTS=$WORK/results
: >"$RESULTS"
ulimit -n "$(ulimit -Hn)"

result() { printf '%s\t%s\t%s\n' "$@" >>"$RESULTS"; log "$1 = $2 (target $3)"; }
for tool in "$PIPER_BIN" "$SSE_CLIENT" "$PRODUCER"; do
    [ -x "$tool" ] || fail "$tool is missing: run make build build/tools/sse-client build/bench/producer"
done

# ---- helpers (the shapes of bench/run.sh) ------------------------------------------

declare -a CLIENT_PIDS=()
clients() { # N SESSIONS_EACH FIRST_IP_OCTET TAG
    local n=$1 each=$2 octet=$3 tag=$4 k
    for k in $(seq 0 $((n - 1))); do
        background "$SSE_CLIENT" --port "$(piper_port prune)" --sessions "$each" --quiet \
            --source-ips "127.0.$((octet + k)).1-127.0.$((octet + k)).20" \
            --consumers "$(consumer_list l "$STREAMS")" \
            --latency-file "$WORK/latency.$tag.$k.hist" 2>"$WORK/client.$tag.$k.log"
        CLIENT_PIDS+=("$LAST_PID")
    done
}
stop_clients() {
    stop_quietly "${CLIENT_PIDS[@]}"
    CLIENT_PIDS=()
}
consumer_list() { # PREFIX COUNT
    local i out=""
    for i in $(seq 0 $(($2 - 1))); do out+="$1$i,"; done
    echo "${out%,}"
}
# quantile TAG Q: the Q quantile in ms of all of TAG's clients' events.
quantile() {
    sort -n "$WORK"/latency."$1".*.hist | awk -v q="$2" '{ v[NR] = $1; c[NR] = $2; n += $2 } END {
        if (n == 0) { print "n/a"; exit }
        rank = int(q * n + 0.5); if (rank < 1) rank = 1; if (rank > n) rank = n
        for (i = 1; i <= NR; i++) { seen += c[i]; if (seen >= rank) { printf "%.2f\n", v[i] / 1000; exit } }
    }'
}
received() { # TAG: events the clients of TAG received
    cat "$WORK"/client."$1".*.log | awk '$1 == "total" { for (i = 2; i <= NF; i++) {
        split($i, kv, "="); if (kv[1] == "events") s += kv[2] } } END { print s + 0 }'
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
metric() { piper_metric_now prune "$1"; }
heap_and_total() { sql "select pg_relation_size('$1') || ' ' || pg_total_relation_size('$1')"; }
wal_lsn() { sql "select pg_current_wal_lsn()"; }
wal_since() { sql "select pg_wal_lsn_diff(pg_current_wal_lsn(), '$1')"; }
elapsed_ms() { echo $((($(now_us) - $1) / 1000)); }
# timed_sql SQL: runs SQL, prints the server round trip in ms (psql's \timing,
# without psql's own start-up).
timed_sql() {
    psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c '\timing on' -c "$1" |
        awk '$1 == "Time:" { printf "%.1f\n", $2 }'
}
# batch_quantile Q: the upper bound of the histogram bucket holding the Q
# quantile of the delete batches' durations, in ms.
batch_quantile() {
    curl -fs "$(piper_url prune /metrics)" | awk -v q="$1" '
        /^event_piper_retention_prune_seconds_bucket/ {
            split($1, a, "\""); le[++n] = a[2]; c[n] = $2 }
        /^event_piper_retention_prune_seconds_count/ { total = $2 }
        END { for (i = 1; i <= n; i++) if (c[i] >= q * total) {
            if (le[i] == "+Inf") print "> 5000"; else printf "<= %g\n", le[i] * 1000; exit } }'
}

pg_start

# ---- 1. history ----------------------------------------------------------------------
log "loading $ROWS rows of history"
t0=$(now_us)
sql "alter table events disable trigger events_assign_id; alter table events disable trigger events_notify" >/dev/null
loaded=0
while [ "$loaded" -lt "$ROWS" ]; do
    n=$((ROWS - loaded < CHUNK ? ROWS - loaded : CHUNK))
    sql "insert into events (id, type, timestamp, subscriber, payload)
         select nextval('events_id_seq'), 'history',
                now() - interval '1 day' + ($loaded + n) * interval '1 microsecond',
                'h' || (($loaded + n) % 1000),
                jsonb_build_object('t', 1700000000000000 + $loaded + n, 'pad', repeat('x', 80))
         from generate_series(1, $n) n order by n" >/dev/null
    loaded=$((loaded + n))
done
sql "alter table events enable trigger events_assign_id; alter table events enable trigger events_notify" >/dev/null
sql "vacuum analyze events" >/dev/null
result "history: $ROWS rows loaded and vacuumed (s)" "$(($(elapsed_ms "$t0") / 1000))" "-"
read -r heap0 total0 <<<"$(heap_and_total events)"
result "events before pruning: heap / with indexes (MiB)" "$(mib "$heap0") / $(mib "$total0")" "-"
max_history=$(sql "select max(id) from events")

# ---- 2. pruning under load -------------------------------------------------------------
piper_start prune LOG_LEVEL=info MAX_SESSIONS=20000 RETENTION_SECONDS=3600 \
    RETENTION_INTERVAL_SECONDS="$FIRST" RETENTION_BATCH_ROWS="$BATCH_ROWS" \
    RETENTION_BATCH_PAUSE_MS="$BATCH_PAUSE_MS"
piper_wait_ready prune 10
started=$(now_us)
clients 2 $((STREAMS / 2)) 20 base
wait_metric prune event_piper_sessions_open = "$STREAMS" 60
declare -a PRODUCERS=()
for k in 0 1; do
    background "$PRODUCER" --db "$DATABASE_URL" --rate $((RATE / 2)) --rows-per-tx 1 \
        --consumers "$STREAMS" --prefix l --offset "$k" --duration 100000 >"$WORK/producer.$k.out"
    PRODUCERS+=("$LAST_PID")
done
sleep "$BASE" # the baseline window: time is the measure here
stop_clients
[ "$(metric event_piper_retention_rows_pruned_total)" = 0 ] ||
    fail "pruning began during the baseline: raise FIRST"
clients 2 $((STREAMS / 2)) 30 prune
wait_metric prune event_piper_sessions_open = "$STREAMS" 60
left=$(((started + FIRST * 1000000 - $(now_us)) / 1000000))
[ "$left" -gt 0 ] || log "note: the pruning clients connected after the run began"
lsn=$(wal_lsn)
wait_metric prune event_piper_retention_rows_pruned_total -gt 0 $((FIRST + 60))
log_offset=0
peak=$total0
while ! has_lines "$(piper_log prune)" "$log_offset" 'msg="retention: run finished" rows=[1-9]' 1; do
    piper_running prune || fail "the service died while pruning"
    read -r _ total <<<"$(heap_and_total events)"
    [ "$total" -gt "$peak" ] && peak=$total
    sleep 1 # a sample a second
done
stop_clients
prune_wal=$(wal_since "$lsn")
read -r run_rows run_batches run_seconds <<<"$(sed -n \
    's/.*msg="retention: run finished" rows=\([0-9]*\) batches=\([0-9]*\) seconds=\([0-9.]*\).*/\1 \2 \3/p' \
    "$(piper_log prune)" | tail -1)"
assert_eq 0 "$(sql "select count(*) from events where type = 'history'")" "history rows left"
assert_eq "$max_history" "$(sql "select max_pruned_id from events_pruned")" "max_pruned_id"
result "rows pruned in one run / batches" "$run_rows / $run_batches" "$ROWS"
result "pruning: seconds / rows per second" \
    "$run_seconds / $(awk -v r="$run_rows" -v s="$run_seconds" 'BEGIN { printf "%.0f", r / s }')" "-"
result "delete batch: mean (ms) / p99 bucket (ms)" "$(awk -v s="$(metric event_piper_retention_prune_seconds_sum)" \
    -v c="$(metric event_piper_retention_prune_seconds_count)" 'BEGIN { printf "%.1f", s * 1000 / c }') / $(batch_quantile 0.99)" "-"
result "WAL written by the pruning (MiB)" "$(mib "$prune_wal")" "-"
result "INSERT-to-client p50 / p99 (ms), baseline ($BASE s)" "$(quantile base 0.5) / $(quantile base 0.99)" "-"
result "INSERT-to-client p50 / p99 (ms), while pruning" "$(quantile prune 0.5) / $(quantile prune 0.99)" "p99 <= 1"
result "  p99.9 / max (ms), while pruning" "$(quantile prune 0.999) / $(quantile prune 1)" "-"
result "events received: baseline / while pruning ($STREAMS streams, $RATE events/s)" \
    "$(received base) / $(received prune)" "-"
result "events size, peak while pruning (MiB)" "$(mib "$peak")" "-"

# ---- 3. bloat --------------------------------------------------------------------------
read -r heap1 total1 <<<"$(heap_and_total events)"
result "events right after pruning: heap / with indexes (MiB)" "$(mib "$heap1") / $(mib "$total1")" "-"
autovacuumed() { [ "$(sql "select autovacuum_count from pg_stat_user_tables where relname = 'events'")" -gt "$1" ]; }
av0=$(sql "select autovacuum_count from pg_stat_user_tables where relname = 'events'")
if within "$AUTOVACUUM_WAIT" autovacuumed "$av0"; then
    read -r heap2 total2 <<<"$(heap_and_total events)"
    result "after autovacuum: heap / with indexes (MiB)" "$(mib "$heap2") / $(mib "$total2")" "-"
else
    result "after autovacuum" "did not run within ${AUTOVACUUM_WAIT}s" "-"
fi
sql "vacuum events" >/dev/null
read -r heap3 total3 <<<"$(heap_and_total events)"
result "after VACUUM: heap / with indexes (MiB)" "$(mib "$heap3") / $(mib "$total3")" "-"
# What VACUUM made reusable: the heap's free space map (pg_freespacemap,
# PostgreSQL's contrib), where new rows go before the file grows.
sql "create extension if not exists pg_freespacemap" >/dev/null
result "  of which free for new rows (MiB)" "$(mib "$(sql "select coalesce(sum(avail), 0) from pg_freespace('events')")")" "-"
rows0=$(sql "select count(*) from events")
sleep "$GROW" # more of the live load: time is the measure here
rows1=$(sql "select count(*) from events")
read -r heap4 _ <<<"$(heap_and_total events)"
result "heap growth while $((rows1 - rows0)) more rows were inserted (MiB)" \
    "$(mib $((heap4 - heap3)))" "~0 (freed space reused)"
stop_quietly "${PRODUCERS[@]}"
piper_stop prune 30

# ---- 4. batch delete vs dropping a partition -----------------------------------------
# The same rows twice: a plain table shaped like events (its indexes, no
# triggers) and a table partitioned by timestamp, whose primary key must
# then include the timestamp.
payload="jsonb_build_object('t', 1700000000000000 + n, 'pad', repeat('x', 80))"
sql "create table bench_plain (like events including defaults including indexes);
     insert into bench_plain select n, 'history', '1999-06-01'::timestamptz + n * interval '1 microsecond',
            'h' || (n % 1000), $payload from generate_series(1, $PART_ROWS) n;
     create table bench_part (id bigint not null, type text not null, timestamp timestamptz not null,
            subscriber text not null, payload jsonb not null, primary key (id, timestamp))
            partition by range (timestamp);
     create index on bench_part (subscriber, id);
     create table bench_part_old partition of bench_part for values from ('-infinity') to ('2000-01-01');
     create table bench_part_new partition of bench_part for values from ('2000-01-01') to ('infinity');
     insert into bench_part select n, 'history', '1999-06-01'::timestamptz + n * interval '1 microsecond',
            'h' || (n % 1000), $payload from generate_series(1, $PART_ROWS) n" >/dev/null
sql "vacuum analyze bench_plain, bench_part" >/dev/null
# The service's batch (keyset on the timestamp index, one transaction each),
# minus the events_pruned update.
sql "create procedure bench_prune(batch integer) language plpgsql as \$\$
     declare
         n bigint;
         from_ts timestamptz := '-infinity';
     begin
         loop
             with gone as (
                 delete from bench_plain where id = any(array(
                     select id from bench_plain where timestamp >= from_ts and timestamp < '2000-01-01'
                     order by timestamp limit batch))
                 returning timestamp)
             select count(*), coalesce(max(timestamp), from_ts) into n, from_ts from gone;
             commit;
             exit when n < batch;
         end loop;
     end \$\$" >/dev/null
read -r _ plain0 <<<"$(heap_and_total bench_plain)"
read -r _ part0 <<<"$(heap_and_total bench_part_old)"
lsn=$(wal_lsn)
delete_ms=$(timed_sql "call bench_prune($BATCH_ROWS)")
delete_wal=$(wal_since "$lsn")
assert_eq 0 "$(sql "select count(*) from bench_plain")" "rows left in bench_plain"
read -r _ plain1 <<<"$(heap_and_total bench_plain)"
lsn=$(wal_lsn)
drop_ms=$(timed_sql "drop table bench_part_old")
drop_wal=$(wal_since "$lsn")
result "$PART_ROWS rows: batch delete ($BATCH_ROWS/tx) vs DROP of a partition (ms)" "$delete_ms vs $drop_ms" "-"
result "  WAL written (MiB)" "$(mib "$delete_wal") vs $(mib "$drop_wal")" "-"
result "  size after (MiB, with indexes), before VACUUM" "$(mib "$plain1") of $(mib "$plain0") vs 0 of $(mib "$part0")" "-"

printf '\n%-82s | %-26s | %s\n' measure value target
printf '%s\n' "-----------------------------------------------------------------------------------+----------------------------+---------"
awk -F'\t' '{ printf "%-82s | %-26s | %s\n", $1, $2, $3 }' "$RESULTS"
printf '\nmachine: %s, %s CPUs, %s; service %s; ROWS=%s STREAMS=%s RATE=%s BATCH_ROWS=%s BATCH_PAUSE_MS=%s\n' \
    "$(uname -r)" "$(nproc)" "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)" \
    "$("$PIPER_BIN" --version 2>/dev/null || echo "$PIPER_BIN")" "$ROWS" "$STREAMS" "$RATE" "$BATCH_ROWS" \
    "$BATCH_PAUSE_MS"
