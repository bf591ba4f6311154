"""Streams one consumer's events from event-piper with httpx and httpx-sse,
printing each event on stdout as "<id> TAB <type> TAB <data>".

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
    PIPER_URL=http://localhost:4000 CONSUMER_ID=toto .venv/bin/python client.py

Optional: LAST_EVENT_ID (start after this id: the service replays the rows
after it first), TOKEN (sent as "Authorization: Bearer").

httpx-sse parses the stream; reconnecting is left to us. The loop below does
what a browser's EventSource does: after a stream that ended (the service
shutting down) it waits the retry: delay the service sent; after a failure
(connection refused or lost, no byte for IDLE_TIMEOUT) it backs off,
doubling the delay up to MAX_BACKOFF; a 503 (instance draining or full) is
retried after its Retry-After. Every reconnection sends the id of the last
event printed as Last-Event-ID, so nothing is lost and nothing comes twice.
A 4xx (bad consumer id, bad token) will not get better: the client exits.
"""

import os
import random
import sys
import time

import httpx
from httpx_sse import SSEError, connect_sse

# Heartbeats come every HEARTBEAT_SECONDS (15): silence this long means a dead
# connection.
IDLE_TIMEOUT = 60.0
MAX_BACKOFF = 10.0


def log(message):
    print(message, file=sys.stderr, flush=True)


def retry_after(response, default):
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else default


def main():
    consumer = os.environ.get("CONSUMER_ID")
    if not consumer:
        log("set CONSUMER_ID")
        return 64
    url = os.environ.get("PIPER_URL", "http://localhost:4000").rstrip("/") + "/events"
    token = os.environ.get("TOKEN")
    last_id = os.environ.get("LAST_EVENT_ID", "")
    retry = 1.0  # seconds; the service's retry: field replaces it
    failures = 0

    with httpx.Client(timeout=httpx.Timeout(5.0, read=IDLE_TIMEOUT)) as client:
        while True:
            headers = {"X-Consumer-Id": consumer}
            if last_id:
                headers["Last-Event-ID"] = last_id
            if token:
                headers["Authorization"] = f"Bearer {token}"
            delay = None
            try:
                with connect_sse(client, "GET", url, headers=headers) as source:
                    status = source.response.status_code
                    if 400 <= status < 500:
                        source.response.read()
                        log(f"stream refused with HTTP {status}: {source.response.text}")
                        return 1
                    if status == 503:
                        delay = retry_after(source.response, retry)
                        log(f"service unavailable (503), retrying in {delay:g} s")
                    elif status != 200:
                        log(f"HTTP {status}")
                    else:
                        log("connected" + (f" after id {last_id}" if last_id else ""))
                        failures = 0
                        for event in source.iter_sse():
                            if event.retry is not None:
                                retry = event.retry / 1000
                            # The retry: block and the heartbeat comments carry no data.
                            if not event.data:
                                continue
                            last_id = event.id
                            print(f"{event.id}\t{event.event}\t{event.data}", flush=True)
                        delay = retry
                        log(f"stream ended, reconnecting in {delay:g} s")
            except (httpx.TransportError, SSEError) as error:
                log(f"connection failed: {error!r}")
            if delay is None:
                failures += 1
                delay = min(MAX_BACKOFF, retry * 2 ** (failures - 1)) * random.uniform(0.5, 1)
            time.sleep(delay)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
