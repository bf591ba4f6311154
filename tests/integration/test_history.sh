#!/usr/bin/env bash
# History: REST paging and latest, long polling woken by the live hub,
# initial=N (latest on connect) under concurrent writers, type-filtered
# streams resumed mid-way, and the history-gone signal for a pruned cursor
# and for a cursor the database never handed out.
source "$(dirname "$0")/../lib.sh"

pg_start
piper_start a REPLAY_PAGE_ROWS=7
piper_wait_ready a
port=$(piper_port a)

ids_of() { # SUBSCRIBER AFTER [UNTIL] [TYPES as SQL list]: committed ids, in order
    sql "select id from events where subscriber = '$1' and id > $2 and id <= ${3:-9223372036854775807}
         ${4:+and type in ($4)} order by id"
}
received() { cut -f1 "$1"; } # FILE: ids a client wrote (signals as empty lines)
get() { curl -sS --max-time 70 "$(piper_url a "$1")"; }
status_of() { curl -sS -o "$WORK/body" -w '%{http_code}' "$(piper_url a "$1")"; }

# writer NAME SUBSCRIBER ROWS: one transaction per row, types a, b, c in turn.
writer() {
    local i types=(a b c)
    for i in $(seq 1 "$3"); do
        echo "insert into events (type, subscriber, payload) values ('${types[i % 3]}', '$2', '{\"w\": \"$1\", \"i\": $i}');"
    done | psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 >/dev/null
}

sql "insert into events (type, subscriber, payload)
     select (array['a','b','c'])[g % 3 + 1], (array['toto','titi'])[g % 2 + 1],
            json_build_object('g', g, 'big', 12345678901234567890123, 's', 'é\"x')
     from generate_series(1, 250) g"

# 1. Paging reproduces the table exactly, keyset on after=, also filtered.
# page_all CONSUMER QUERY: every id, following next_after until more=false.
page_all() {
    local after=0 page more=true
    while [ "$more" = true ]; do
        page=$(get "/events/history?consumer_id=$1&after=$after&limit=7$2")
        python3 -c 'import json,sys; [print(e["id"]) for e in json.load(sys.stdin)["events"]]' <<<"$page"
        read -r after more < <(python3 -c 'import json,sys; p=json.load(sys.stdin); print(p["next_after"], str(p["more"]).lower())' <<<"$page")
    done
}
assert_eq "$(ids_of toto 0)" "$(page_all toto "")" "history pages of toto"
assert_eq "$(ids_of titi 0 "" "'a','c'")" "$(page_all titi "&type=a&type=c")" "filtered pages"
one=$(sql "select min(id) from events where subscriber = 'toto'")
page=$(get "/events/history?consumer_id=toto&after=$((one - 1))&limit=1")
expected=$(sql "select json_build_object('id', id::text, 'event', type, 'data', payload,
    'timestamp', to_char(timestamp at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))
    from events where id = $one")
python3 - "$page" "$expected" <<'EOF' || fail "first event of the page differs from the row"
import json, sys
page, row = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert page["events"] == [row], (page, row)
assert page["more"] is True and page["history_gone"] is False and page["next_after"] == row["id"]
# jsonb keeps the 23-digit integer exactly; the answer must too
assert "12345678901234567890123" in sys.argv[1]
EOF

# 2. latest, and the parameter errors.
newest_b=$(sql "select max(id) from events where subscriber = 'titi' and type = 'b'")
assert_eq "$newest_b" "$(get "/events/latest?consumer_id=titi&type=b" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" "latest of type b"
assert_eq 404 "$(status_of "/events/latest?consumer_id=nobody")" "latest of a consumer without events"
assert_contains "$(cat "$WORK/body")" '"error":"no_events"' "404 body"
check() { # PATH STATUS ERROR
    assert_eq "$2" "$(status_of "$1")" "$1"
    assert_contains "$(cat "$WORK/body")" "\"error\":\"$3\"" "$1 body"
}
check "/events/history?consumer_id=toto&after=-1" 400 invalid_after
check "/events/history?consumer_id=toto&after=x" 400 invalid_after
check "/events/history?consumer_id=toto&limit=0" 400 invalid_limit
check "/events/history?consumer_id=toto&limit=1001" 400 invalid_limit
check "/events/history?consumer_id=toto&wait=61" 400 invalid_wait
check "/events/history?consumer_id=toto&type=" 400 invalid_type
check "/events/history" 400 missing_consumer_id
check "/events?consumer_id=toto&initial=0" 400 invalid_initial
check "/events?consumer_id=toto&initial=1001" 400 invalid_initial
check "/events?consumer_id=toto&initial=x" 400 invalid_initial
check "/events?consumer_id=toto&$(printf 'type=t%d&' $(seq 1 17))" 400 too_many_types

# 3. Long polling: held until a row of its types arrives, woken by the hub.
last=$(sql "select max(id) from events")
get "/events/history?consumer_id=toto&after=$last&wait=20&type=c" >"$WORK/poll" &
poll=$!
wait_metric a event_piper_history_long_polls_waiting = 1
insert_event toto a '{"not": "mine"}' >/dev/null
insert_event titi c '{"not": "mine"}' >/dev/null
sleep 0.3 # a poll woken by the wrong row would answer now
exited "$poll" && fail "a row of another type or consumer answered the long poll"
before=$(now_us)
mine=$(insert_event toto c '{"mine": true}')
wait "$poll" || fail "the long poll failed"
elapsed_ms=$((($(now_us) - before) / 1000))
log "long poll answered ${elapsed_ms} ms after the insert"
[ "$elapsed_ms" -lt 2000 ] || fail "long poll took ${elapsed_ms} ms"
assert_eq "$mine" "$(python3 -c 'import json,sys; print(",".join(e["id"] for e in json.load(sys.stdin)["events"]))' <"$WORK/poll")" "the long poll's page"
empty=$(get "/events/history?consumer_id=toto&after=$mine&wait=1")
assert_contains "$empty" "\"events\":[],\"next_after\":\"$mine\",\"more\":false" "empty page after wait"
wait_metric a event_piper_history_long_polls_waiting = 0
metric_is a 'event_piper_history_requests_total{endpoint="history"}' -ge 30 ||
    fail "history requests not counted"
metric_is a 'event_piper_history_requests_total{endpoint="latest"}' = 2 ||
    fail "latest requests not counted"

# 4. initial=N: the newest N rows, oldest first, then live; exactly once
#    across the hand-over while 8 writers insert.
"$SSE_CLIENT" --port "$port" --path "/events?initial=3" --consumer toto --count 3 --timeout 10 \
    --quiet --out "$WORK/quiet"
assert_eq "$(ids_of toto 0 | tail -3)" "$(received "$WORK/quiet/0.events")" "initial=3, no writers"
for w in $(seq 1 8); do
    background writer "w$w" toto 60
    writers+=("$LAST_PID")
done
written_at_least() { [ "$(sql "select count(*) from events where payload ? 'w'")" -ge "$1" ]; }
pids=()
for n in 1 2 3 4; do
    wait_for "rows from the writers" 20 written_at_least $((n * 60))
    background "$SSE_CLIENT" --port "$port" --path "/events?initial=3" --consumer toto \
        --until-id 999999999 --quiet --out "$WORK/initial$n"
    pids+=("$LAST_PID")
done
for pid in "${writers[@]}"; do wait "$pid"; done
marker=$(insert_event toto marker '{"last": true}')
for n in 1 2 3 4; do
    wait_for "initial stream $n to reach the marker" 20 grep -q "^$marker	" "$WORK/initial$n/0.events"
    got=$(received "$WORK/initial$n/0.events")
    first=$(head -1 <<<"$got")
    assert_eq "$(ids_of toto $((first - 1)) "$marker")" "$got" "initial stream $n: no gap, no duplicate"
    [ "$(wc -l <<<"$got")" -ge 4 ] || fail "initial stream $n got fewer than 3 rows before live"
done
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done

# 5. A type-filtered stream resumed mid-way: exactly the rest of its types.
mid=$(ids_of titi 0 | sed -n 40p)
end=$(insert_event titi c '{"end": true}')
"$SSE_CLIENT" --port "$port" --path "/events?type=c&type=a" --consumer titi --last-event-id "$mid" \
    --until-id "$end" --timeout 10 --quiet --out "$WORK/typed"
assert_eq "$(ids_of titi "$mid" "$end" "'a','c'")" "$(received "$WORK/typed/0.events")" "typed resume"

# 6. History gone. Retention's pruning, done by hand here exactly as
#    schema.sql specifies it: the rows and the subscriber's mark together.
sql "begin;
     with gone as (delete from events where subscriber = 'toto' and id <= $mid returning id)
     insert into events_pruned_subscribers select 'toto', max(id) from gone
       on conflict (subscriber) do update set max_pruned_id = greatest(events_pruned_subscribers.max_pruned_id, excluded.max_pruned_id);
     commit;" >/dev/null
oldest=$(sql "select min(id) from events where subscriber = 'toto'")
end=$(insert_event toto end '{"end": true}')
"$SSE_CLIENT" --port "$port" --consumer toto --last-event-id 5 --until-id "$end" --timeout 10 \
    --quiet --out "$WORK/gone"
assert_eq "	history-gone	{\"last_event_id\":\"5\",\"oldest_id\":\"$oldest\",\"consumer_id\":\"toto\"}" \
    "$(head -1 "$WORK/gone/0.events")" "the signal comes first"
assert_eq "$(ids_of toto 5 "$end")" "$(tail -n +2 "$WORK/gone/0.events" | cut -f1)" "then exactly the retained rows"
page=$(get "/events/history?consumer_id=toto&after=5&limit=1")
assert_contains "$page" '"history_gone":true' "history says so too"
# titi's mark is untouched: its resume from an old id is complete, no signal.
"$SSE_CLIENT" --port "$port" --consumer titi --last-event-id 5 --until-id "$(ids_of titi 0 | tail -1)" \
    --timeout 10 --quiet --out "$WORK/titi"
assert_eq "$(ids_of titi 5)" "$(received "$WORK/titi/0.events")" "no signal for another subscriber"
wait_metric a 'event_piper_history_gone_total{reason="pruned"}' = 1

# 7. A cursor above every id the sequence handed out (a restored database):
#    the signal with reason unknown_cursor, then the newest row, then live.
newest=$(ids_of toto 0 | tail -1)
offset=$(log_size a)
background "$SSE_CLIENT" --port "$port" --consumer toto --last-event-id 99999999 --count 2 \
    --quiet --out "$WORK/future"
wait_log a 'msg="history gone".*last_event_id=99999999.*reason=unknown_cursor' 10 "$offset"
late=$(insert_event toto late '{"x": 1}')
wait_for "the live event after the signal" 10 grep -q "^$late	" "$WORK/future/0.events"
assert_eq "$(printf '\n%s\n%s' "$newest" "$late")" "$(received "$WORK/future/0.events")" "signal, newest, live"
assert_contains "$(head -1 "$WORK/future/0.events")" '"reason":"unknown_cursor"' "the reason"
wait_metric a 'event_piper_history_gone_total{reason="unknown_cursor"}' = 1

piper_stop a
test_done
