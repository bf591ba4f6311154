// Streams one consumer's events from event-piper with the `eventsource`
// package (the EventSource API of browsers, for Node.js), printing each event
// as "<id> TAB <type> TAB <data>".
//
//   npm ci && PIPER_URL=http://localhost:4000 CONSUMER_ID=toto node client.mjs
//
// Optional: EVENT_TYPES (comma-separated, default "insert,update,order":
// like a browser's EventSource, this one delivers a named event only to a
// listener for that name), LAST_EVENT_ID (start after this id), TOKEN (sent
// as "Authorization: Bearer"), MAX_EVENTS (exit after that many).
//
// The library reconnects by itself after a lost connection, waiting the
// retry: delay the service sends, and resumes with the Last-Event-ID header.
import { EventSource } from "eventsource";

const url = new URL("/events", process.env.PIPER_URL || "http://localhost:4000");
const consumer = process.env.CONSUMER_ID;
const types = (process.env.EVENT_TYPES || "insert,update,order").split(",").filter(Boolean);
const maxEvents = Number(process.env.MAX_EVENTS || 0);
if (!consumer) {
  console.error("set CONSUMER_ID");
  process.exit(64);
}

// Headers ride on the fetch the library makes for each (re)connection. The
// library adds Last-Event-ID itself on reconnects; LAST_EVENT_ID only seeds
// the first connection.
function withHeaders(input, init) {
  const headers = { ...init.headers, "X-Consumer-Id": consumer };
  if (process.env.TOKEN) headers.Authorization = "Bearer " + process.env.TOKEN;
  if (process.env.LAST_EVENT_ID && !("Last-Event-ID" in headers)) headers["Last-Event-ID"] = process.env.LAST_EVENT_ID;
  return fetch(input, { ...init, headers });
}

const source = new EventSource(url, { fetch: withHeaders });
let received = 0;

function print(event) {
  process.stdout.write(`${event.lastEventId}\t${event.type}\t${event.data}\n`);
  received++;
  if (maxEvents > 0 && received >= maxEvents) {
    source.close();
  }
}

source.onopen = () => console.error("connected");
source.onerror = (err) => {
  // A 4xx (bad consumer id, bad token) closes the source for good; anything
  // else is retried by the library.
  if (source.readyState === EventSource.CLOSED) {
    console.error("stream refused:", err.code ?? "", err.message ?? "");
    process.exitCode = 1;
  } else {
    console.error("connection lost, reconnecting");
  }
};
source.onmessage = print;
for (const type of types) source.addEventListener(type, print);
