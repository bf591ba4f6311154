#!/usr/bin/env bash
# Payloads of every size arrive intact and compact, values untouched; a bad
# row is logged and skipped while everyone keeps streaming.
source "$(dirname "$0")/../lib.sh"

pg_start
piper_start a
piper_wait_ready a
url=$(piper_url a /events)
background curl -sN -o "$WORK/stream" "$url" -H "X-Consumer-Id: toto"
wait_log a 'msg="session opened"' 5

# Values are kept exactly as PostgreSQL stores them: numeric precision,
# unicode, escapes.
insert_event toto exact '{"pi": 3.14159265358979323846264338327950288, "big": 12345678901234567890, "price": 1.10, "s": "caf\u00e9 \"quoted\" \\ back", "nested": {"a": [1, 2, {"b": null}]}}' >/dev/null
wait_for "the exact event" 5 grep -q '^event: exact$' "$WORK/stream"
data=$(grep -A1 '^event: exact$' "$WORK/stream" | tail -n 1)
assert_eq 'data: {"s":"café \"quoted\" \\ back","pi":3.14159265358979323846264338327950288,"big":12345678901234567890,"price":1.10,"nested":{"a":[1,2,{"b":null}]}}' "$data" "exact values"

# payload_of_size N: a JSON object whose compact text is exactly N bytes.
payload_of_size() {
    local n=$1
    local fill=$((n - 8)) # {"p":""} is 8 bytes
    printf '{"p":"%s"}' "$(head -c "$fill" /dev/zero | tr '\0' 'z')"
}

# Around the old 8000-byte NOTIFY limit of whole-row notifications, 100 KB
# and 1 MB: every row is read from the table, whatever its size.
for size in 7800 7999 8000 8001 102400 1048576; do
    payload_of_size "$size" >"$WORK/p$size"
    id=$(sql "insert into events (type, subscriber, payload) values ('size$size', 'toto', pg_read_file('$WORK/p$size')::jsonb) returning id" 2>/dev/null ||
        psql "$DATABASE_URL" -X -q -t -A -v ON_ERROR_STOP=1 -v "p=$(cat "$WORK/p$size")" -c "insert into events (type, subscriber, payload) values ('size$size', 'toto', :'p'::jsonb) returning id")
    [ -n "$id" ] || fail "insert of $size bytes failed"
    wait_for "the $size-byte event" 10 grep -q "^event: size$size\$" "$WORK/stream"
    got=$(grep -A1 "^event: size$size\$" "$WORK/stream" | tail -n 1)
    [ "$got" == "data: $(cat "$WORK/p$size")" ] || fail "$size-byte payload altered (got ${#got} bytes)"
    assert_eq "id: $id" "$(grep -B1 "^event: size$size\$" "$WORK/stream" | head -n 1)" "id of the $size-byte event"
done
[ "$(piper_metric a event_piper_ingest_confirm_reads_total)" -gt 0 ] || fail "no row was read back from the table"

# The trigger notifies once per statement: every row of a statement, in id
# order, as a row signed with events_notify_key's HMAC-SHA256, or when that
# would break the 8000-byte limit as a hint (id and subscriber, or the id
# alone). Read straight from a LISTEN; the MACs are checked with the key.
notifications=$(psql "$DATABASE_URL" -X -q -t -A -v ON_ERROR_STOP=1 2>&1 <<'SQL'
LISTEN new_events;
INSERT INTO events (type, subscriber, payload) VALUES
    ('whole', 'shapes', '{"a": 1}'),
    ('by_id_and_subscriber', 'shapes', jsonb_build_object('p', repeat('y', 8000))),
    ('by_id', repeat('s', 8100), '{}'),
    ('whole_again', 'shapes', '{"b": 2}');
SELECT 1;
SQL
)
key=$(sql "select encode(key, 'hex') from events_notify_key")
python3 - "$notifications" "$key" <<'PY' || fail "notifications of a 4-row statement are wrong: $notifications"
import hashlib, hmac, json, re, sys
payloads = re.findall(r'Asynchronous notification "new_events" with payload "(.*)" received', sys.argv[1])
key = bytes.fromhex(sys.argv[2])
def signed(p):
    mac, body = p.split(" ", 1)
    assert hmac.compare_digest(mac, hmac.new(key, body.encode(), hashlib.sha256).hexdigest()), p
    return json.loads(body)
assert len(payloads) == 4, f"{len(payloads)} notifications"
rows = [signed(payloads[0]), json.loads(payloads[1]), json.loads(payloads[2]), signed(payloads[3])]
ids = [r["id"] for r in rows]
assert ids == list(range(ids[0], ids[0] + 4)), f"ids {ids}"
assert {k: rows[0][k] for k in ("id", "subscriber", "type", "payload")} == \
    {"id": ids[0], "subscriber": "shapes", "type": "whole", "payload": {"a": 1}}, rows[0]
assert isinstance(rows[0]["ts"], float), rows[0]
assert rows[1] == {"id": ids[1], "subscriber": "shapes"}, rows[1]
assert set(rows[2]) == {"id"}
assert rows[3]["type"] == "whole_again" and rows[3]["payload"] == {"b": 2}, rows[3]
PY

# Through the service: one statement of small and large rows, then COPY.
sql "insert into events (type, subscriber, payload) values
     ('mixed1', 'toto', '{}'), ('mixed2', 'toto', pg_read_file('$WORK/p8001')::jsonb), ('mixed3', 'toto', '{}')" >/dev/null
printf 'copy1\ttoto\t{"c": 1}\ncopy2\ttoto\t{"c": 2}\n' |
    psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "\\copy events (type, subscriber, payload) from stdin"
wait_for "the copied rows" 10 grep -q '^event: copy2$' "$WORK/stream"
assert_eq "mixed1 mixed2 mixed3 copy1 copy2" \
    "$(grep -E '^event: (mixed|copy)' "$WORK/stream" | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//')" \
    "rows of one statement and of a COPY, in id order"

# Bad rows: a payload that is not an object, an event type with a newline.
insert_event toto bad '[1, 2, 3]' >/dev/null
sql "insert into events (type, subscriber, payload) values (E'two\nlines', 'toto', '{}')" >/dev/null
insert_event toto after_bad '{"ok": true}' >/dev/null
wait_for "the event after the bad rows" 5 grep -q '^event: after_bad$' "$WORK/stream"
grep -q '^event: bad$' "$WORK/stream" && fail "a non-object payload was delivered"
grep -q 'reason=payload_not_object' "$(piper_log a)" || fail "the bad payload was not logged"
grep -q 'reason=bad_type' "$(piper_log a)" || fail "the bad type was not logged"

# Replay skips the same rows and delivers everything else. The stream is
# read past its replay and the hand-over, up to a live row inserted once the
# replay reached the last row.
background curl -sN --max-time 30 "$url" -H "X-Consumer-Id: toto" -H "Last-Event-ID: 0" >"$WORK/replay"
replay_stream=$LAST_PID
wait_file_lines "$WORK/replay" '^event: after_bad$' 1 10 "the replay to reach the last row"
insert_event toto after_replay '{}' >/dev/null
wait_file_lines "$WORK/replay" '^event: after_replay$' 1 10 "the live row after the replay"
stop_quietly "$replay_stream"
body=$(cat "$WORK/replay")
assert_contains "$body" "event: after_bad" "replay reaches the last row"
assert_not_contains "$body" "event: bad" "replay skips the bad row"
for size in 7999 8001 1048576; do
    assert_contains "$body" "event: size$size" "replay of the $size-byte row"
done
piper_stop a
test_done
