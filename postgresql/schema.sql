-- event-piper schema: the events table, its index and the triggers that
-- order ids per subscriber and notify the service. Safe to apply again, also
-- on a live database: it runs as one transaction, so inserts never meet a
-- half-applied version (say, the old row trigger calling the new function).
BEGIN;

CREATE TABLE IF NOT EXISTS events (
    id bigserial PRIMARY KEY,
    type text NOT NULL,
    timestamp timestamptz NOT NULL DEFAULT now(),
    subscriber text NOT NULL,
    payload jsonb NOT NULL
);

-- Replay reads one subscriber's rows after an id, in id order.
CREATE INDEX IF NOT EXISTS events_subscriber_id_idx ON events (subscriber, id);

-- Retention (RETENTION_SECONDS) deletes rows whose timestamp is older than
-- the retention, oldest first, through this index: each delete batch is an
-- index range scan that stops after its rows, however large the table.
-- Its cost on inserts is one more B-tree entry per row (about 20 bytes), and
-- timestamps mostly grow, so entries go to the index's rightmost page, which
-- stays in memory. Built here even when retention is off, so that turning it
-- on needs no DDL. On an existing large table build it first without
-- blocking writers, then apply this file (IF NOT EXISTS skips it here):
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS events_timestamp_idx ON events (timestamp);
-- (if that build fails, DROP INDEX the invalid index it leaves, then retry).
CREATE INDEX IF NOT EXISTS events_timestamp_idx ON events (timestamp);

-- One row: the highest id retention has ever deleted, and when it last
-- deleted. src/db/retention.c updates it in the same statement, hence the
-- same transaction, as each delete batch, with GREATEST so it never goes
-- down. It is 0 while nothing was pruned. The same statement raises the
-- per-subscriber marks of events_pruned_subscribers (below), which replays
-- read; this global one answers for the table as a whole (any consumer,
-- monitoring: "how far back is history complete?").
--
-- What it means, exactly. Every row retention deleted has id <=
-- max_pruned_id. So for a cursor c (a Last-Event-ID):
--   c >= max_pruned_id: no row after c was ever pruned; the rows after c
--     that the table holds are all the rows after c there were.
--   c <  max_pruned_id: at least one row after c (the row max_pruned_id)
--     was pruned, possibly one of this consumer's; the history after c may
--     have a gap.
-- It is not "every id <= max_pruned_id is gone": pruning goes by timestamp,
-- and a timestamp is the writer's (default now(), the inserting
-- transaction's start), so a row can have a smaller id and a newer
-- timestamp than a pruned one and stay, and a row whose id was drawn before
-- a batch can commit after it. Both only make c < max_pruned_id more
-- cautious, never wrong.
-- To get the exact answer for a replay, read max_pruned_id in the same
-- statement (hence the same snapshot) as the rows: a batch's deletes and
-- its update of this row commit together, so a snapshot that misses a
-- pruned row also sees the mark that covers it.
CREATE TABLE IF NOT EXISTS events_pruned (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_pruned_id bigint NOT NULL DEFAULT 0,
    pruned_at timestamptz
);
INSERT INTO events_pruned (singleton) VALUES (true) ON CONFLICT DO NOTHING;

-- Ids are assigned by the BEFORE INSERT trigger below, under a lock, not by
-- the column default: a default would be evaluated before the lock is taken
-- and would also burn a sequence value per row.
ALTER TABLE events ALTER COLUMN id DROP DEFAULT;

-- Why a lock: sequence values are handed out at insert time but become
-- visible at commit, so with concurrent writers id 7 can commit after id 8.
-- A client that saw 8 and resumes with Last-Event-ID: 8 would never get 7.
-- Taking a per-subscriber transaction lock before drawing the id makes id
-- order equal commit order for each subscriber: PostgreSQL makes a commit
-- visible before it releases the transaction's locks, so a later writer for
-- the same subscriber draws its id only after the earlier one is visible.
-- Writers for different subscribers do not wait on each other (unless their
-- names collide in hashtext, which only costs a little concurrency).
--
-- Rule for writers: a transaction that inserts for several subscribers must
-- insert them in a fixed order (say, sorted by subscriber), or two such
-- transactions can deadlock. A transaction holds the lock of each subscriber
-- it inserted for until it ends, so keep those transactions short.
--
-- An explicitly given id is replaced: ids are the stream cursor and only
-- this trigger can hand them out in commit order.
CREATE OR REPLACE FUNCTION events_assign_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- 1702260340 is 'evnt' in ASCII: the lock class for event-piper.
    PERFORM pg_advisory_xact_lock(1702260340, hashtext(NEW.subscriber));
    NEW.id := nextval('events_id_seq'::regclass);
    RETURN NEW;
END
$$;

-- The notification. PostgreSQL has no permission on NOTIFY: any role that
-- can connect can send anything on this channel, so what the service takes
-- from it must be unforgeable or only a hint.
--
-- Signed rows: the whole row as JSON, {"id", "subscriber", "type", "ts",
-- "payload"}, preceded by its HMAC-SHA256 in hex and a space. The key lives
-- in events_notify_key, which no role but the owner (and the service's
-- role, granted SELECT by the deployment) can read; this function runs as
-- the owner (SECURITY DEFINER), so writers sign without seeing the key. The
-- service checks the MAC and delivers the row at once, with no read back.
--
-- Hints: a row whose signed form would break PostgreSQL's 8000-byte NOTIFY
-- limit (or any row when the key is missing) is sent as {"id": 7,
-- "subscriber": "toto"}, or {"id": 7} when even that would not fit; the
-- service then reads the row itself from the table. The subscriber lets an
-- instance skip rows nobody connected to it wants. So an insert never
-- fails because of its size.
--
-- One call per statement, not per row: 100-row INSERTs run faster than with
-- a row trigger; a single-row INSERT pays a few microseconds for the
-- transition table, far less than a real commit's flush (bench/RESULTS.md).
-- Every row is still notified, in id order: ORDER BY and OFFSET 0 keep the
-- subquery a plan node of its own, so pg_notify runs over rows already
-- sorted. PostgreSQL's logical replication applies rows without statement
-- triggers: on a subscriber database, run event-piper against the publisher
-- (or use the NATS ingest).
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE IF NOT EXISTS events_notify_key (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key bytea NOT NULL
);
REVOKE ALL ON events_notify_key FROM PUBLIC;
INSERT INTO events_notify_key (key) VALUES (gen_random_bytes(32)) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    k bytea;
BEGIN
    SELECT key INTO k FROM events_notify_key;
    PERFORM pg_notify('new_events',
        CASE WHEN k IS NOT NULL AND octet_length(m.body) < 7900
                 THEN encode(hmac(convert_to(m.body, 'UTF8'), k, 'sha256'), 'hex') || ' ' || m.body
             WHEN octet_length(m.hint) < 8000 THEN m.hint
             ELSE json_build_object('id', m.id)::text
        END)
    FROM (SELECT n.id,
                 json_build_object('id', n.id, 'subscriber', n.subscriber)::text AS hint,
                 json_build_object('id', n.id, 'subscriber', n.subscriber, 'type', n.type,
                                   'ts', extract(epoch FROM n.timestamp),
                                   'payload', n.payload)::text AS body
          FROM inserted n
          ORDER BY n.id
          OFFSET 0) m;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS events_assign_id ON events;
CREATE TRIGGER events_assign_id BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_assign_id();

DROP TRIGGER IF EXISTS events_notify ON events;
CREATE TRIGGER events_notify AFTER INSERT ON events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- Pruned marks: for each subscriber, the highest of its ids that retention
-- (RETENTION_SECONDS) deleted, written in the transaction of the delete. A
-- stream resuming from Last-Event-ID L for subscriber S may have lost rows
-- only when L < max_pruned_id of S (no row of S above its mark was ever
-- deleted, by the mark's definition). The service then sends the
-- stream a history-gone event before what is left. Per subscriber, not one
-- global mark, so that a quiet subscriber resuming from its own last event
-- is not told of gaps in other subscribers' histories.
CREATE TABLE IF NOT EXISTS events_pruned_subscribers (
    subscriber text PRIMARY KEY,
    max_pruned_id bigint NOT NULL
);

COMMIT;
