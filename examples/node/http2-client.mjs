// Streams one consumer's events from event-piper over HTTP/2 with Node's
// built-in `http2` module (no npm package), printing each event as
// "<id> TAB <type> TAB <data>".
//
//   PIPER_URL=https://localhost:4000 CONSUMER_ID=toto node http2-client.mjs
//
// An https:// URL speaks HTTP/2 over TLS (ALPN h2; NODE_EXTRA_CA_CERTS names
// a CA to trust besides the system's), an http:// one HTTP/2 with prior
// knowledge (h2c), which the service's cleartext port accepts.
//
// Optional: LAST_EVENT_ID (start after this id), TOKEN (sent as
// "Authorization: Bearer"), STREAMS (open that many streams of the consumer
// on the one connection, default 1: each prints its events, so a consumer
// shown on N tabs costs one connection), MAX_EVENTS (exit after that many
// lines).
//
// It behaves like EventSource: a stream that ends, or a connection that is
// lost or refused, is reopened after the retry: delay the service sent, with
// Last-Event-ID set to the last id printed; a 4xx is final, a 503 is retried
// after its Retry-After.
import http2 from "node:http2";

const base = process.env.PIPER_URL || "http://localhost:4000";
const consumer = process.env.CONSUMER_ID;
const streams = Number(process.env.STREAMS || 1);
const maxEvents = Number(process.env.MAX_EVENTS || 0);
if (!consumer) {
  console.error("set CONSUMER_ID");
  process.exit(64);
}

let session = null;
let printed = 0;

// One session (connection) shared by every stream; a new one once it is
// closed or failed.
function getSession() {
  if (session && !session.closed && !session.destroyed) return session;
  session = http2.connect(base);
  session.on("error", (err) => console.error("connection error:", err.code || err.message));
  session.on("goaway", (code) => console.error("GOAWAY received, code", code));
  session.on("connect", () => console.error("connected over HTTP/2 (" + (session.alpnProtocol || "h2c") + ")"));
  return session;
}

function print(line) {
  process.stdout.write(line + "\n");
  printed++;
  if (maxEvents > 0 && printed >= maxEvents) {
    process.stdout.write("", () => process.exit(0));
  }
}

// One stream's life: parses text/event-stream line by line and resumes from
// its own last id.
function follow(index, lastEventId) {
  let retryMs = 1000;
  let buffer = "";
  let event = { id: null, type: null, data: null };
  const again = (delayMs) => setTimeout(() => follow(index, lastEventId), delayMs);

  const headers = { ":path": "/events", accept: "text/event-stream", "x-consumer-id": consumer };
  if (lastEventId) headers["last-event-id"] = lastEventId;
  if (process.env.TOKEN) headers.authorization = "Bearer " + process.env.TOKEN;
  let req;
  try {
    req = getSession().request(headers);
  } catch (err) {
    console.error(`stream ${index}: cannot open (${err.code || err.message}), retrying`);
    session = null;
    again(retryMs);
    return;
  }
  req.setEncoding("utf8");
  let status = 0;
  req.on("response", (h) => {
    status = h[":status"];
    if (status === 503) retryMs = 1000 * Number(h["retry-after"] || 1);
    else if (status !== 200) console.error(`stream ${index}: refused with HTTP ${status}`);
  });
  req.on("data", (chunk) => {
    if (status !== 200) return;
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
      if (line === "") {
        if (event.data !== null) {
          if (event.id !== null) lastEventId = event.id;
          print(`${lastEventId}\t${event.type || "message"}\t${event.data}`);
        }
        event = { id: null, type: null, data: null };
        continue;
      }
      if (line.startsWith(":")) continue; // heartbeat comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") event.id = value;
      else if (field === "event") event.type = value;
      else if (field === "data") event.data = event.data === null ? value : event.data + "\n" + value;
      else if (field === "retry" && /^[0-9]+$/.test(value)) retryMs = Number(value);
    }
  });
  req.on("close", () => {
    if (status >= 400 && status < 500) {
      process.exitCode = 1;
      process.exit(1);
    }
    console.error(`stream ${index}: ended, reconnecting after ${retryMs} ms`);
    again(retryMs);
  });
  req.on("error", (err) => console.error(`stream ${index}: ${err.code || err.message}`));
}

for (let i = 0; i < streams; i++) follow(i, process.env.LAST_EVENT_ID || "");
