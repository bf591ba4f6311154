"""Streams one consumer's events from event-piper over WebSocket with the
`websockets` package, printing each event on stdout as
"<id> TAB <type> TAB <data>" (the same lines as client.py).

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
    PIPER_URL=http://localhost:4000 CONSUMER_ID=toto .venv/bin/python ws_client.py

Optional: LAST_EVENT_ID (start after this id: the service replays the rows
after it first), TOKEN (sent as the Sec-WebSocket-Protocol value, the way a
browser's `new WebSocket(url, [token])` sends it), MAX_EVENTS (exit after
that many). An https:// PIPER_URL connects with wss:// (SSL_CERT_FILE names
a CA to trust besides the system's).

The service sends each event as one text message
{"id": "<id>", "event": "<type>", "data": <payload>}, pings as heartbeats
(the library answers them) and a close frame when the stream ends: 1001
when the instance shuts down, 1008 when the credential expired, 1013 for a
client that read too slowly. Whatever ended the connection, the loop below
reconnects with the id of the last event printed as the last_event_id query
parameter, so nothing is lost and nothing comes twice: at once after a clean
close, with doubling back-off (up to MAX_BACKOFF) after a failure. A 4xx
answer to the handshake (bad consumer id, bad token) will not get better:
the client exits.
"""

import asyncio
import json
import os
import sys
import urllib.parse

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

MAX_BACKOFF = 5.0


def log(message):
    print(message, file=sys.stderr, flush=True)


def stream_url(base, consumer, last_id):
    parts = urllib.parse.urlsplit(base.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = f"{parts.path}/ws/{urllib.parse.quote(consumer, safe='')}"
    query = urllib.parse.urlencode({"last_event_id": last_id}) if last_id else ""
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, query, ""))


async def main():
    consumer = os.environ.get("CONSUMER_ID")
    if not consumer:
        log("set CONSUMER_ID")
        return 64
    base = os.environ.get("PIPER_URL", "http://localhost:4000")
    token = os.environ.get("TOKEN")
    last_id = os.environ.get("LAST_EVENT_ID", "")
    max_events = int(os.environ.get("MAX_EVENTS", "0"))
    received = 0
    backoff = 0.25

    while True:
        url = stream_url(base, consumer, last_id)
        try:
            async with connect(url, subprotocols=[token] if token else None,
                               open_timeout=5, ping_interval=None) as ws:
                log(f"connected after id {last_id or '-'}")
                async for message in ws:
                    event = json.loads(message)
                    data = json.dumps(event["data"], ensure_ascii=False, separators=(",", ":"))
                    print(f"{event['id']}\t{event['event'] or 'message'}\t{data}", flush=True)
                    last_id = event["id"]
                    backoff = 0.25
                    received += 1
                    if max_events and received >= max_events:
                        return 0
            # The server closed cleanly (say 1001 at shutdown): resume at once.
            log(f"closed by the server ({ws.close_code} {ws.close_reason}), reconnecting")
            continue
        except InvalidStatus as e:
            status = e.response.status_code
            if 400 <= status < 500 and status != 429:
                log(f"refused with HTTP {status}: {e.response.body.decode(errors='replace')}")
                return 1
            log(f"refused with HTTP {status}, retrying in {backoff:.2f} s")
        except InvalidHandshake as e:  # say a draining instance closing at once
            log(f"handshake failed ({e}), retrying in {backoff:.2f} s")
        except ConnectionClosed as e:
            log(f"connection lost ({e}), retrying in {backoff:.2f} s")
        except (OSError, asyncio.TimeoutError) as e:
            log(f"cannot connect ({e}), retrying in {backoff:.2f} s")
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
