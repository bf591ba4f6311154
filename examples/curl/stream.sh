#!/usr/bin/env bash
# Streams one consumer's events with curl, reconnecting after a lost
# connection with the last id seen, as an EventSource would.
#
#   examples/curl/stream.sh toto [http://localhost:4000]
#
# Prints the raw text/event-stream (heartbeat comments included). The last
# id is kept in LAST_ID_FILE (default: a temporary file), so the stream
# resumes where it stopped, without a gap or a duplicate; set LAST_EVENT_ID to
# start after a given id.
#
# The one-shot equivalent, without reconnects:
#   curl -N -H 'X-Consumer-Id: toto' -H 'Last-Event-ID: 41' http://localhost:4000/events
set -uo pipefail
consumer=${1:?usage: stream.sh CONSUMER_ID [BASE_URL]}
base=${2:-http://localhost:4000}
last_id_file=${LAST_ID_FILE:-$(mktemp)}
head_file=$(mktemp)
trap 'rm -f "$head_file"' EXIT
[ -s "$last_id_file" ] || echo "${LAST_EVENT_ID:-}" >"$last_id_file"

while :; do
    last=$(cat "$last_id_file")
    headers=(-H "X-Consumer-Id: $consumer" -H "Accept: text/event-stream")
    [ -n "$last" ] && headers+=(-H "Last-Event-ID: $last")
    # -N: print each event as it arrives. An id counts as seen only once its
    # event is complete (the blank line), as in EventSource.
    curl -sSN -D "$head_file" "${headers[@]}" "$base/events" | {
        pending=""
        while IFS= read -r line; do
            printf '%s\n' "$line"
            case "$line" in
                id:*) pending=${line#id:}; pending=${pending# } ;;
                "") [ -n "$pending" ] && printf '%s\n' "$pending" >"$last_id_file"; pending="" ;;
            esac
        done
    }
    # A 4xx will not get better by retrying (bad consumer id, bad token).
    status=$(awk 'NR == 1 { print $2 }' "$head_file")
    case "$status" in 4*) echo "stream refused with HTTP $status" >&2; exit 1 ;; esac
    sleep 1 # lost connection, 503 (draining, full) or the service is down
done
