#!/usr/bin/env python3
"""Records every message published on some NATS subjects, byte for byte.

    nats_capture.py --url nats://127.0.0.1:4222 --out DIR SUBJECT...

A plain (core NATS) subscriber speaking the text protocol itself, so that it
needs nothing but Python: it sees each message as the publisher sent it,
JetStream or not. Message n (from 1) is written to DIR/n.msg, and a line
"n<TAB>subject<TAB>bytes<TAB>headers" is appended to DIR/index, where headers
is "-" when the message had none. "ready" is printed on stdout once the
subscriptions are in place (the server has answered a PING after them). It
runs until the connection closes or it is terminated.
"""
import argparse
import json
import os
import signal
import socket
import sys
import urllib.parse


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def exactly(self, n):
        while len(self.buf) < n + 2:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("subjects", nargs="+")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    url = urllib.parse.urlparse(args.url)
    os.makedirs(args.out, exist_ok=True)
    sock = socket.create_connection((url.hostname, url.port or 4222))
    reader = Reader(sock)
    info = reader.line()
    if not info.startswith("INFO "):
        sys.exit("nats_capture: unexpected greeting " + info[:80])
    connect = {"verbose": False, "pedantic": False, "headers": True, "name": "nats_capture"}
    out = "CONNECT " + json.dumps(connect) + "\r\n"
    for sid, subject in enumerate(args.subjects, 1):
        out += f"SUB {subject} {sid}\r\n"
    sock.sendall((out + "PING\r\n").encode())

    count = 0
    ready = False
    index = open(os.path.join(args.out, "index"), "a", encoding="utf-8")
    while True:
        try:
            line = reader.line()
        except EOFError:
            return
        op = line.split(" ", 1)[0].upper()
        if op == "PING":
            sock.sendall(b"PONG\r\n")
        elif op == "PONG" and not ready:
            ready = True
            print("ready", flush=True)
        elif op in ("MSG", "HMSG"):
            parts = line.split(" ")
            subject = parts[1]
            if op == "MSG":
                headers, total = b"", int(parts[-1])
                data = reader.exactly(total)
            else:
                header_len, total = int(parts[-2]), int(parts[-1])
                raw = reader.exactly(total)
                headers, data = raw[:header_len], raw[header_len:]
            count += 1
            with open(os.path.join(args.out, f"{count}.msg"), "wb") as f:
                f.write(data)
            shown = headers.decode(errors="replace").strip().replace("\r\n", " | ") or "-"
            index.write(f"{count}\t{subject}\t{len(data)}\t{shown}\n")
            index.flush()
        elif op == "-ERR":
            sys.exit("nats_capture: server error: " + line)


if __name__ == "__main__":
    main()
