#!/usr/bin/env bash
# Retention (issue 19): rows older than RETENTION_SECONDS are deleted in
# batches, on one instance at a time, and events_pruned.max_pruned_id is
# exactly the highest id deleted.
#
#   1. schema.sql applies again on a database that has it (idempotent) and
#      leaves events_pruned's one row alone.
#   2. Two instances with retention on. Old rows (some with ids above newer
#      rows: retention goes by timestamp, not id) are pruned in small,
#      paced batches by the instance that took the advisory lock first,
#      while the other's runs are skipped (metric) and pg_locks shows one
#      holder only: the pruning instance's retention backend. A stream on the
#      pruning instance receives live events while the run goes on.
#   3. The pruning instance is killed mid-run: its lock goes with its
#      session, the other instance (which never started a run before)
#      finishes the job. Every old row is gone, every newer row is there,
#      max_pruned_id is the highest old id and each subscriber's mark in
#      events_pruned_subscribers the highest of its old ids; a resume from a
#      pruned id gets history-gone, one whose rows were never pruned not.
#   4. PostgreSQL restarts: retention reconnects and prunes what is due.
#   5. SIGTERM in the middle of a run: no new batch starts, the process
#      exits cleanly (status 0, no sanitizer report); what was deleted is an
#      exact prefix in timestamp order and max_pruned_id is its last id.
source "$(dirname "$0")/../lib.sh"

KEY=7311152491464389998 # RETENTION_LOCK_KEY of src/db/retention.h
pg_start

# ---- 1. idempotent schema ------------------------------------------------------
sql "update events_pruned set max_pruned_id = 5" >/dev/null
psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -f "$ROOT/postgresql/schema.sql" >/dev/null 2>&1 ||
    fail "schema.sql does not apply again"
assert_eq "1 5" "$(sql "select count(*), max(max_pruned_id) from events_pruned" | tr '|' ' ')" \
    "events_pruned after applying schema.sql again"
sql "update events_pruned set max_pruned_id = 0" >/dev/null

# ---- 2. two instances, one prunes ----------------------------------------------
# Old rows two hours old; then newer rows; then older rows again, whose ids
# are above the newer ones'. Inserted as the insert trigger orders them (per
# subscriber, sorted), with the notifications of the service not running.
old_rows() { # TYPE COUNT AGE
    sql "insert into events (type, timestamp, subscriber, payload)
         select '$1', now() - interval '$3' + n * interval '1 ms', 'o' || (n % 10), '{}'
         from generate_series(1, $2) n order by n % 10, n" >/dev/null
}
new_rows() { # COUNT
    sql "insert into events (type, subscriber, payload)
         select 'new', 'k' || (n % 3), jsonb_build_object('n', n) from generate_series(1, $1) n
         order by n % 3" >/dev/null
}
old_rows old 12000 '2 hours'
new_rows 20
old_rows old 4000 '3 hours'
new_rows 20
expected_max=$(sql "select max(id) from events where type = 'old'")
marks() { # TYPE: per subscriber, the highest id of its rows of TYPE
    sql "select string_agg(subscriber || '=' || m, ',' order by subscriber)
         from (select subscriber, max(id) m from events where type = '$1' group by 1) s"
}
expected_marks=$(marks old)
newer_min=$(sql "select min(id) from events where type = 'new'")
[ "$expected_max" -gt "$newer_min" ] || fail "setup: some older rows should have ids above newer ones"

# 16,000 rows in batches of 100 paced 50 ms apart: a run of 8 s or more.
retention=(LOG_LEVEL=debug RETENTION_SECONDS=3600 RETENTION_INTERVAL_SECONDS=1
    RETENTION_BATCH_ROWS=100 RETENTION_BATCH_PAUSE_MS=50)
piper_start a "${retention[@]}"
wait_log a 'msg="retention: run started"' 20
piper_start b "${retention[@]}"
piper_wait_ready a
piper_wait_ready b

# Only a's retention backend holds the lock, and b skips its runs meanwhile.
a_backend=$(sed -n 's/.*msg="retention: connected" backend_pid="\{0,1\}\([0-9]*\).*/\1/p' \
    "$(piper_log a)" | head -1)
[ -n "$a_backend" ] || fail "no retention backend pid in a's log"
holders() {
    sql "select string_agg(pid::text, ',') from pg_locks where locktype = 'advisory'
         and classid = ($KEY >> 32)::oid and objid = ($KEY & 4294967295)::oid
         and objsubid = 1 and granted"
}
assert_eq "$a_backend" "$(holders)" "holders of the retention lock while a prunes"
wait_metric b 'event_piper_retention_runs_total{result="skipped"}' -ge 2 20
assert_eq "$a_backend" "$(holders)" "holders of the retention lock while b skips"

# A stream on the pruning instance gets live events during the run.
background curl -s -N --max-time 60 -H "X-Consumer-Id: live" "$(piper_url a /events)" >"$WORK/live.out"
wait_metric a event_piper_sessions_open = 1 10
for i in 1 2 3; do insert_event live live "{\"i\": $i}" >/dev/null; done
wait_file_lines "$WORK/live.out" '^id: ' 3 20 "3 live events on a's stream during pruning"
assert_eq 0 "$(lines_matching "$(piper_log a)" 0 'msg="retention: run finished"')" \
    "a's run should still be going on after the live events arrived"
pruned_a=$(piper_metric a event_piper_retention_rows_pruned_total)
[ "$pruned_a" -gt 0 ] || fail "a pruned nothing yet"
assert_eq 0 "$(piper_metric a 'event_piper_retention_runs_total{result="skipped"}')" "a's skipped runs"

# ---- 3. a dies mid-run, b takes over ---------------------------------------------
b_offset=$(log_size b)
piper_kill a
assert_eq 0 "$(lines_matching "$(piper_log a)" 0 'msg="retention: run finished"')" \
    "a was killed in the middle of its run"
# Up to the kill only: once a's session is gone, b may take the lock at once.
assert_eq 0 "$(head -c "$b_offset" "$(piper_log b)" | grep -c 'msg="retention: run started"')" \
    "b must not have started a run while a held the lock"
wait_log b 'msg="retention: run finished" rows="?[1-9]' 60 "$b_offset"
assert_eq 0 "$(sql "select count(*) from events where type = 'old'")" "old rows left"
assert_eq 40 "$(sql "select count(*) from events where type = 'new'")" "newer rows kept"
assert_eq 3 "$(sql "select count(*) from events where type = 'live'")" "live rows kept"
assert_eq "$expected_max" "$(sql "select max_pruned_id from events_pruned")" \
    "max_pruned_id after the first pruning"
assert_eq "$expected_marks" "$(sql "select string_agg(subscriber || '=' || max_pruned_id, ','
    order by subscriber) from events_pruned_subscribers")" "per-subscriber marks"
# What the marks are for: a resume from before o3's pruned rows is told,
# one from k1's (never pruned) beginning is not.
stream_until "$WORK/o3.out" '^event: history-gone' 10 -H "X-Consumer-Id: o3" -H "Last-Event-ID: 1" \
    "$(piper_url b /events)" || fail "no history-gone for a resume from a pruned id"
k1_last=$(sql "select max(id) from events where subscriber = 'k1'")
stream_until "$WORK/k1.out" "^id: $k1_last\$" 10 -H "X-Consumer-Id: k1" -H "Last-Event-ID: 0" \
    "$(piper_url b /events)" || fail "k1's resume did not reach its last row"
assert_not_contains "$(cat "$WORK/k1.out")" "history-gone" "k1's resume"
pruned_b=$(piper_metric b event_piper_retention_rows_pruned_total)
{ [ "$pruned_b" -gt 0 ] && [ "$pruned_b" -lt 16000 ]; } ||
    fail "b should have pruned what a left (1 to 15,999 rows), not $pruned_b"
[ "$(piper_metric b event_piper_retention_prune_seconds_count)" -gt 0 ] || fail "no batch timed"
[ "$(piper_metric b 'event_piper_retention_runs_total{result="pruned"}')" -ge 1 ] ||
    fail "b counted no run"

# ---- 4. PostgreSQL restarts --------------------------------------------------------
b_offset=$(log_size b)
pg_restart
wait_log b 'msg="retention: connected"' 30 "$b_offset"
old_rows old2 500 '5 hours'
expected_max=$(sql "select max(id) from events where type = 'old2'")
wait_log b 'msg="retention: run finished" rows="?500"? ' 30 "$b_offset"
assert_eq 0 "$(sql "select count(*) from events where type = 'old2'")" "old2 rows left"
assert_eq "$expected_max" "$(sql "select max_pruned_id from events_pruned")" \
    "max_pruned_id after the restart"

# ---- 5. SIGTERM during a run ----------------------------------------------------------
# Timestamps grow with ids here, so each batch deletes the next ids in order.
# The first id comes from the insert itself: b may prune before a later read.
first=$(sql "with rows as (
                 insert into events (type, timestamp, subscriber, payload)
                 select 'old3', now() - interval '4 hours' + n * interval '1 ms', 'p', '{}'
                 from generate_series(1, 20000) n order by n
                 returning id)
             select min(id) from rows")
b_offset=$(log_size b)
wait_log b 'msg="retention: batch" rows="?100"? ' 30 "$b_offset"
piper_stop b
# The server may still be running the last batch for the process that is
# gone: the state is final once the session has ended.
retention_backends() {
    sql "select count(*) from pg_stat_activity where application_name = 'event-piper retention'"
}
wait_output 0 20 "retention sessions" retention_backends
left=$(sql "select count(*) from events where type = 'old3'")
mark=$(sql "select max_pruned_id from events_pruned")
{ [ "$left" -gt 0 ] && [ "$left" -lt 20000 ]; } || fail "the run should have stopped part-way ($left left)"
assert_eq $((20000 - left)) $((mark - first + 1)) "rows deleted against max_pruned_id"
assert_eq 0 "$(sql "select count(*) from events where type = 'old3' and id <= $mark")" \
    "old3 rows at or below max_pruned_id"
assert_eq "$mark" "$(sql "select max_pruned_id from events_pruned_subscribers where subscriber = 'p'")" \
    "the mark of old3's only subscriber"
assert_eq "" "$(holders)" "holders of the retention lock after both instances are gone"
test_done
