"""Checks one WebSocket protocol rule against the service, with the
`websockets` package (run it with examples/python/.venv/bin/python):

    ws_probe.py CASE URL [TOKEN]

Cases, each printing one line:
  text     sends a text message; prints the server's close code
  binary   sends a binary message; prints the server's close code
  big      sends a text message of 64 KiB; prints the server's close code
  ping     sends a ping with a payload; prints "pong" when answered
  close    starts the close handshake (1000); prints the code the server
           answered with
  first    prints the first message the server sends, as received
  protocol connects offering TOKEN as the only subprotocol; prints the
           subprotocol the server chose, then the first message
  status   prints the HTTP status of a refused handshake (or "101")
  pings    a bare client (no library answering for it): prints the
           payload of the first 2 ping frames the server sends
"""
import asyncio
import base64
import os
import sys
import urllib.parse

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


async def closed_code(ws):
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass
    return ws.close_code


async def bare_pings(url, count=2):
    """The handshake by hand, then frames read raw until COUNT pings came."""
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    key = base64.b64encode(os.urandom(16)).decode()
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    writer.write((f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        return head.split(b"\r\n")[0].decode()
    pings = []
    while len(pings) < count:
        b0, b1 = await reader.readexactly(2)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(length)
        if b0 & 0x0F == 0x9:
            pings.append(payload.decode())
    writer.close()
    return " ".join(pings)


async def main(case, url, token=None):
    if case == "pings":
        return await asyncio.wait_for(bare_pings(url), 15)
    if case == "status":
        try:
            async with connect(url, open_timeout=5, subprotocols=[token] if token else None):
                return "101"
        except InvalidStatus as e:
            return str(e.response.status_code)
    subprotocols = [token] if case == "protocol" else None
    async with connect(url, open_timeout=5, ping_interval=None, max_size=None,
                       subprotocols=subprotocols) as ws:
        if case == "text":
            await ws.send("hello")
            return await asyncio.wait_for(closed_code(ws), 10)
        if case == "binary":
            await ws.send(b"\x00\x01")
            return await asyncio.wait_for(closed_code(ws), 10)
        if case == "big":
            await ws.send("x" * 65536)
            return await asyncio.wait_for(closed_code(ws), 10)
        if case == "ping":
            waiter = await ws.ping(b"are you there")
            await asyncio.wait_for(waiter, 10)
            return "pong"
        if case == "close":
            await asyncio.wait_for(ws.close(1000, "bye"), 10)
            rcvd = ws.protocol.close_rcvd  # the server's close frame
            return f"{rcvd.code if rcvd else 'none'}"
        if case == "first":
            return await asyncio.wait_for(ws.recv(), 15)
        if case == "protocol":
            first = await asyncio.wait_for(ws.recv(), 15)
            return f"{ws.subprotocol}\n{first}"
    raise SystemExit(f"unknown case {case}")


if __name__ == "__main__":
    print(asyncio.run(main(*sys.argv[1:])), flush=True)
