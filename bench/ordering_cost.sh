#!/usr/bin/env bash
# Write throughput cost of the per-subscriber ordering lock.
#
# Runs pgbench against a throwaway PostgreSQL with three variants of the
# events table and prints rows/s for 1 and 8 writer connections:
#   lock+notify  postgresql/schema.sql as shipped
#   notify       same NOTIFY trigger, ids from the bigserial default, no lock
#   plain        no triggers at all (the table alone)
# Each transaction inserts ROWS_PER_TX rows (default 1) for one of
# SUBSCRIBERS subscribers (default 100) chosen at random. Each figure is the
# median of RUNS runs (default 3), taken in turn across variants so a burst
# of noise on the machine does not land on one variant only.
#
#   bench/ordering_cost.sh [seconds per run, default 10]
TEST_NAME=bench-ordering
source "$(dirname "$0")/../tests/lib.sh" # the throwaway PostgreSQL, stopped on exit
cd "$ROOT"
seconds=${1:-10}
rows=${ROWS_PER_TX:-1}
runs=${RUNS:-3}
subscribers=${SUBSCRIBERS:-100}
pg_start
url=$DATABASE_URL
pgbench=$(printf '%s\n' /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -n 1)
[ -x "$pgbench" ] || { echo "pgbench not found (Debian package postgresql)" >&2; exit 1; }

setup() {
    psql "$url" -X -q -c "drop table if exists events cascade" >/dev/null
    psql "$url" -X -q -v ON_ERROR_STOP=1 -f postgresql/schema.sql >/dev/null
    case "$1" in
    notify)
        psql "$url" -X -q -c "drop trigger events_assign_id on events;
            alter table events alter column id set default nextval('events_id_seq')" ;;
    plain)
        psql "$url" -X -q -c "drop trigger events_assign_id on events;
            drop trigger events_notify on events;
            alter table events alter column id set default nextval('events_id_seq')" ;;
    esac
}

script="$WORK/insert.sql"
{
    echo "\\set s random(1, $subscribers)"
    echo "BEGIN;"
    for _ in $(seq 1 "$rows"); do
        echo "INSERT INTO events (type, subscriber, payload) VALUES ('bench', 'sub' || :s, '{\"k\": \"v\", \"n\": 1}');"
    done
    echo "END;"
} >"$script"

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -A results=()
for _ in $(seq 1 "$runs"); do
    for variant in lock+notify notify plain; do
        setup "$variant"
        for clients in 1 8; do
            tps=$("$pgbench" -n -f "$script" -c "$clients" -j "$clients" -T "$seconds" "$url" 2>/dev/null |
                awk '/^tps/ {print $3; exit}')
            results[$variant/$clients]+="$(echo "$tps * $rows" | bc) "
        done
    done
done
printf '%-14s %8s %14s   %s\n' variant writers rows/s "(runs)"
for variant in lock+notify notify plain; do
    for clients in 1 8; do
        read -r -a all <<<"${results[$variant/$clients]}"
        printf '%-14s %8d %14.0f   (%s)\n' "$variant" "$clients" \
            "$(printf '%s\n' "${all[@]}" | median)" "$(printf '%.0f ' "${all[@]}")"
    done
done
