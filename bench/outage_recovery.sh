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
TEST_NAME=bench-outage
METRICS_CHECK=0 # the numbers only: the tests check the exposition
source "$(dirname "$0")/../tests/lib.sh" # PostgreSQL and the service, stopped on exit
cd "$ROOT"
runs=${1:-5}
make -s build build/tools/sse-client
PIPER_BIN=$ROOT/bin/event-piper
pg_start
piper_start m LOG_LEVEL=warn
piper_wait_ready m
background "$SSE_CLIENT" --port "$(piper_port m)" --consumer m --reconnect --quiet --out "$WORK/out"
client=$LAST_PID
wait_metric m event_piper_sessions_open = 1 10

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Prints the ms from $1 until the client has written an event with id $2.
wait_event_ms() {
    local since=$1 id=$2
    until grep -q "^$id	" "$WORK/out/0.events" 2>/dev/null; do sleep 0.01; done
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
            pg_restart >/dev/null
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
stop_quietly "$client"
piper_stop m
