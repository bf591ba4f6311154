#!/usr/bin/env bash
# Outage recovery time: how long after the LISTEN connection is lost does an
# event committed meanwhile reach a connected client?
#
# Two faults, RUNS times each (default 5), printing every run and the median:
#   terminate  pg_terminate_backend() of the listener's backend; the event is
#              committed right after it, while the listener reconnects
#   restart    pg_ctl restart -m fast; the event is committed as soon as the
#              server accepts connections again
# The time is from the fault (terminate) or from the server being back
# (restart) to the event appearing in the client's output; polling makes it
# accurate to about 10 ms. Uses the release binary with default settings.
#
#   bench/outage_recovery.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
make -s build build/tools/sse-client
dir=$(mktemp -d /tmp/piper-bench-outage.XXXXXX)
chmod 755 "$dir"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ./postgresql/pg-local stop "$dir/pg" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
url=$(./postgresql/pg-local start "$dir/pg")
port=$((20000 + RANDOM % 10000))
DATABASE_URL="$url" PORT=$port BIND_ADDRESS=127.0.0.1 LOG_LEVEL=warn bin/event-piper 2>"$dir/piper.log" &
pids+=($!)
until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do sleep 0.05; done
build/tools/sse-client --port "$port" --consumer m --reconnect --quiet --out "$dir/out" &
pids+=($!)
sleep 0.5

now_ms() { echo $(($(date +%s%N) / 1000000)); }
sql() { psql "$url" -X -q -t -A -c "$1"; }

# Prints the ms from $1 until the client has written an event with id $2.
wait_event_ms() {
    local since=$1 id=$2
    until grep -q "^$id	" "$dir/out/0.events" 2>/dev/null; do sleep 0.01; done
    echo $(($(now_ms) - since))
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

for fault in terminate restart; do
    times=()
    for run in $(seq 1 "$runs"); do
        if [ "$fault" = terminate ]; then
            t0=$(now_ms)
            sql "select pg_terminate_backend(pid) from pg_stat_activity
                 where application_name = 'event-piper listener'" >/dev/null
        else
            ./postgresql/pg-local restart "$dir/pg" >/dev/null
            t0=$(now_ms)
        fi
        id=$(sql "insert into events (type, subscriber, payload)
                  values ('outage', 'm', '{\"run\": $run}') returning id")
        ms=$(wait_event_ms "$t0" "$id")
        printf '%-10s run %d: %5d ms\n' "$fault" "$run" "$ms"
        times+=("$ms")
        sleep 1
    done
    printf '%-10s median: %s ms\n' "$fault" "$(printf '%s\n' "${times[@]}" | median)"
done
