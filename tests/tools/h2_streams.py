#!/usr/bin/python3
"""Many SSE streams on one HTTP/2 connection (h2c, prior knowledge), driven
from a test script: what curl and nghttp cannot do, resetting one stream of
several and leaving one stream unread while the others read.

    h2_streams.py PORT CONSUMER COUNT [--window BYTES] [--slow INDEX] [--commands FILE]

Opens COUNT streams `GET /events` for CONSUMER on 127.0.0.1:PORT, all on one
connection. With --window, the streams' flow-control window (our
SETTINGS_INITIAL_WINDOW_SIZE) is BYTES; stream INDEX of --slow is never given
more window (its bytes stay on the server), while the others get theirs back
as soon as they read, as does the connection.

Commands on FILE (a FIFO; default stdin), one a line: `reset I` sends RST_STREAM (CANCEL) on stream
I (0-based); `quit` ends. Prints on stdout, one line each, flushed:
`open I STATUS`, `event I ID` for each event's id line, `reset I CODE` when
the server resets stream I, `ended I` when it ends stream I, `goaway CODE
LAST_STREAM_ID`, `closed` when the server closes the connection (then it
exits).
"""
import argparse
import os
import selectors
import socket
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings


def say(*words):
    print(*words, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("consumer")
    ap.add_argument("count", type=int)
    ap.add_argument("--window", type=int, default=0)
    ap.add_argument("--slow", type=int, default=-1)
    ap.add_argument("--commands")
    args = ap.parse_args()

    sock = socket.create_connection(("127.0.0.1", args.port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    if args.window:
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: args.window})
    ids = []
    for _ in range(args.count):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                (":authority", f"127.0.0.1:{args.port}"), (":path", "/events"),
                                ("accept", "text/event-stream"), ("x-consumer-id", args.consumer)],
                          end_stream=True)
        ids.append(sid)
    index = {sid: i for i, sid in enumerate(ids)}
    slow = ids[args.slow] if 0 <= args.slow < len(ids) else None
    partial = {sid: b"" for sid in ids}
    sock.sendall(conn.data_to_send())

    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "sock")
    commands = open(args.commands) if args.commands else sys.stdin
    sel.register(commands, selectors.EVENT_READ, "commands")
    while True:
        for key, _ in sel.select():
            if key.data == "commands":
                line = commands.readline()
                words = line.split()
                if not line or words[:1] == ["quit"]:
                    return
                if words[:1] == ["reset"]:
                    conn.reset_stream(ids[int(words[1])], error_code=8)
                continue
            data = sock.recv(65536)
            if not data:
                say("closed")
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers).get(b":status", b"?").decode()
                    say("open", index[ev.stream_id], status)
                elif isinstance(ev, h2.events.DataReceived):
                    sid = ev.stream_id
                    if sid == slow:
                        # The connection's window comes back, the stream's does not.
                        conn.increment_flow_control_window(ev.flow_controlled_length)
                    else:
                        conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    text = partial[sid] + ev.data
                    *lines, partial[sid] = text.split(b"\n")
                    for ln in lines:
                        if ln.startswith(b"id: "):
                            say("event", index[sid], ln[4:].decode())
                elif isinstance(ev, h2.events.StreamReset):
                    say("reset", index.get(ev.stream_id, "?"), int(ev.error_code))
                elif isinstance(ev, h2.events.StreamEnded):
                    say("ended", index.get(ev.stream_id, "?"))
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    say("goaway", int(ev.error_code), ev.last_stream_id)
            out = conn.data_to_send()
            if out:
                sock.sendall(out)


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, ConnectionResetError) as e:
        say("closed", type(e).__name__)
    sys.stdout.flush()
    os._exit(0)
