#!/usr/bin/env python3
"""Hostile clients for tests/integration/test_attacks.sh and its kin.

Each mode attacks one port the way issue 15 describes and prints what it
saw, one "key value" per line, for the test to check:

  pipeline PORT SECONDS      one connection sends pipelined GET /healthz as
                             fast as the socket takes them and never reads;
                             prints sent_bytes and closed_after (seconds, or
                             "never" after SECONDS)
  drip PORT N SECONDS        N connections each send a request one byte a
                             second; prints per connection "closed I SECS
                             STATUS" (STATUS: the answer's status, or none)
  hold PORT N SECONDS FILE [CONSUMER]
                             N streams of CONSUMER (default big) with
                             Last-Event-ID: 0 that never read
                             (SO_RCVBUF 4 KiB); writes FILE once every
                             request is sent, prints "closed I SECS" per
                             stream the server closed within SECONDS
  h2 KIND PORT SECONDS       an HTTP/2 prior-knowledge connection that floods
                             (KIND: rapid_reset, continuation, settings,
                             ping); prints frames_sent, goaway (the error
                             code of the GOAWAY received, or none) and
                             closed_after

Only the Python standard library: frames are built by hand, so a flood can
break rules a protocol library would refuse to break.
"""
import select
import socket
import struct
import sys
import time


def connect(port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # before connect(), so the window is small from the start
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    return s


CLOSED = select.POLLRDHUP | select.POLLHUP | select.POLLERR


def pipeline(port, seconds):
    s = connect(port, rcvbuf=4096)
    s.setblocking(False)
    batch = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
    sent, start = 0, time.monotonic()
    p = select.poll()
    p.register(s, select.POLLOUT | select.POLLRDHUP)
    closed = None
    while time.monotonic() - start < seconds:
        ev = p.poll(100)
        if any(e & CLOSED for _, e in ev):
            closed = time.monotonic() - start
            break
        if any(e & select.POLLOUT for _, e in ev):
            try:
                sent += s.send(batch)
            except (BrokenPipeError, ConnectionResetError):
                closed = time.monotonic() - start
                break
            except BlockingIOError:
                pass
    print("sent_bytes", sent)
    print("closed_after", "never" if closed is None else "%.2f" % closed)


def drip(port, n, seconds):
    # A head that never ends within the test: the deadline must cut it.
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Drip: " + b"d" * 1000
    socks = [connect(port) for _ in range(n)]
    for s in socks:
        s.setblocking(False)
    start = time.monotonic()
    answers = {i: b"" for i in range(n)}
    done = {}
    pos = 0
    while len(done) < n and time.monotonic() - start < seconds:
        for i, s in enumerate(socks):
            if i in done:
                continue
            try:
                s.send(request[pos : pos + 1])
            except OSError:
                pass
        pos += 1
        until = time.monotonic() + 1.0
        while time.monotonic() < until and len(done) < n:
            live = [s for i, s in enumerate(socks) if i not in done]
            readable, _, _ = select.select(live, [], [], max(0.0, until - time.monotonic()))
            for s in readable:
                i = socks.index(s)
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if data:
                    answers[i] += data
                else:
                    done[i] = time.monotonic() - start
    for i in range(n):
        status = answers[i].split(b" ", 2)[1].decode() if answers[i].startswith(b"HTTP/") else "none"
        print("closed", i, "%.2f" % done[i] if i in done else "never", status)


def hold(port, n, seconds, ready_file, consumer="big"):
    socks = []
    for i in range(n):
        s = connect(port, rcvbuf=4096)
        s.sendall(
            b"GET /events HTTP/1.1\r\nHost: x\r\nX-Consumer-Id: %s\r\nLast-Event-ID: 0\r\n\r\n"
            % consumer.encode()
        )
        socks.append(s)
    start = time.monotonic()
    with open(ready_file, "w") as f:
        f.write("%d\n" % n)
    p = select.poll()
    for s in socks:
        p.register(s, select.POLLRDHUP)
    fds = {s.fileno(): i for i, s in enumerate(socks)}
    done = {}
    probe = time.monotonic()
    while len(done) < n and time.monotonic() - start < seconds:
        for fd, e in p.poll(200):
            if e & CLOSED and fds[fd] not in done:
                done[fds[fd]] = time.monotonic() - start
                p.unregister(fd)
        # A socket the server's kernel dropped (TCP_USER_TIMEOUT) sends no
        # FIN: one byte of input (a stream discards it) is answered by a
        # reset, which the poll above then sees.
        if time.monotonic() - probe >= 0.5:
            probe = time.monotonic()
            for i, s in enumerate(socks):
                if i not in done:
                    try:
                        s.send(b"\n")
                    except OSError:
                        pass
    for i in sorted(done):
        print("closed", i, "%.2f" % done[i])
    sys.stdout.flush()


# ---- HTTP/2 ------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    """HPACK literal field without indexing, new name, no Huffman coding."""
    return bytes([0x00, len(name)]) + name + bytes([len(value)]) + value


# :method GET, :scheme http (static table entries 2 and 6), :path and
# :authority as literals.
def request_block(path):
    return b"\x82\x86" + literal(b":path", path) + literal(b":authority", b"x")


def h2(kind, port, seconds):
    # A small receive window, so that what the server answers (SETTINGS and
    # PING acknowledgements) piles up on its side.
    s = connect(port, rcvbuf=4096)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    sent, start = 0, time.monotonic()
    out = bytearray()
    if kind == "rapid_reset":
        block = request_block(b"/events") + literal(b"x-consumer-id", b"rr")
        for i in range(20000):
            sid = 1 + 2 * i
            out += frame(HEADERS, END_HEADERS | END_STREAM, sid, block)
            out += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))  # CANCEL
            sent += 2
    elif kind == "continuation":
        out += frame(HEADERS, END_STREAM, 1, request_block(b"/healthz"))
        filler = literal(b"x-filler", b"f" * 50)
        for _ in range(20000):
            out += frame(CONTINUATION, 0, 1, filler)
            sent += 1
    elif kind == "settings":
        for _ in range(1000000):
            out += frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 65535))
            sent += 1
    elif kind == "ping":
        for i in range(1000000):
            out += frame(PING, 0, 0, struct.pack(">Q", i))
            sent += 1
    else:
        raise SystemExit("unknown h2 attack " + kind)
    # Sent without reading (the acknowledgements pile up on the server),
    # until the server has taken no byte for a second, or closes.
    s.setblocking(False)
    view = memoryview(bytes(out))
    closed = None
    while view and time.monotonic() - start < seconds:
        _, w, x = select.select([], [s], [s], 1.0)
        if x or not w:
            break
        if w:
            try:
                n = s.send(view[:65536])
                view = view[n:]
            except BlockingIOError:
                pass
            except OSError:
                break
    # Then read whatever the server says until it closes.
    s.setblocking(True)
    s.settimeout(0.5)
    buf, goaway, received = b"", "none", 0
    while time.monotonic() - start < seconds:
        try:
            data = s.recv(1 << 16)
        except socket.timeout:
            continue
        except OSError as e:
            print("read_error", e.errno)
            data = b""
        if not data:
            closed = time.monotonic() - start
            break
        buf += data
        received += len(data)
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            if buf[3] == GOAWAY and length >= 8:
                goaway = str(int.from_bytes(buf[13:17], "big"))
            buf = buf[9 + length :]
    print("frames_sent", sent)
    print("bytes_received", received)
    print("goaway", goaway)
    print("closed_after", "never" if closed is None else "%.2f" % closed)


def main(argv):
    mode = argv[1]
    if mode == "pipeline":
        pipeline(int(argv[2]), float(argv[3]))
    elif mode == "drip":
        drip(int(argv[2]), int(argv[3]), float(argv[4]))
    elif mode == "hold":
        hold(int(argv[2]), int(argv[3]), float(argv[4]), argv[5], *argv[6:7])
    elif mode == "h2":
        h2(argv[2], int(argv[3]), float(argv[4]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
