// event-piper demo page: one EventSource, its state, and a test-insert button.
// EventSource reconnects by itself and sends Last-Event-ID; the page only
// shows what happens.
"use strict";

const $ = (id) => document.getElementById(id);
let source = null;
let opened = 0;
let count = 0;
const seen = new Set();

function setState(name, text) {
  $("state").className = "state state-" + name;
  $("state").textContent = text;
}

function streamUrl(consumer, token) {
  const params = new URLSearchParams({ consumer_id: consumer });
  if (token) params.set("access_token", token);
  return "/events?" + params.toString();
}

function showEvent(e) {
  const received = Date.now();
  let payload = e.data;
  let latency = "";
  try {
    const parsed = JSON.parse(e.data);
    payload = JSON.stringify(parsed);
    if (typeof parsed.sent_at === "number") latency = (received - parsed.sent_at) + " ms";
  } catch (_) { /* shown as text */ }
  if (seen.has(e.lastEventId)) console.warn("duplicate event", e.lastEventId);
  seen.add(e.lastEventId);
  count++;
  $("count").textContent = count;
  $("last-id").textContent = e.lastEventId;
  const row = document.createElement("tr");
  row.className = "fresh";
  row.dataset.id = e.lastEventId;
  for (const text of [e.lastEventId, e.type, null, latency]) {
    const cell = document.createElement("td");
    if (text === null) {
      const code = document.createElement("code");
      code.textContent = payload;
      cell.appendChild(code);
    } else {
      cell.textContent = text;
    }
    row.appendChild(cell);
  }
  $("events").tBodies[0].prepend(row);
}

function connect(consumer, token) {
  if (source) source.close();
  opened = 0;
  source = new EventSource(streamUrl(consumer, token));
  setState("connecting", "connecting");
  source.onopen = () => {
    opened++;
    if (opened > 1) $("reconnects").textContent = opened - 1;
    setState("open", "live");
    $("insert").disabled = false;
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) setState("closed", "closed (check the consumer id or token)");
    else setState("connecting", "reconnecting");
  };
  source.onmessage = showEvent;
  // Named events (the row's type) need their own listeners: the stream
  // announces types as they come, so listen for any the page has seen.
  for (const type of ["insert", "update", "demo", "order", "message"]) source.addEventListener(type, showEvent);
}

$("connect").addEventListener("submit", (ev) => {
  ev.preventDefault();
  connect($("consumer").value.trim(), $("token").value.trim());
});

$("insert").addEventListener("click", async () => {
  const headers = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) headers.Authorization = "Bearer " + token;
  const body = { consumer_id: $("consumer").value.trim(), type: "demo",
                 payload: { sent_at: Date.now(), text: "hello from the demo page" } };
  try {
    const res = await fetch("/demo/events", { method: "POST", headers, body: JSON.stringify(body) });
    const answer = await res.json();
    $("insert-result").textContent = res.ok ? "inserted id " + answer.id : answer.message;
  } catch (err) {
    $("insert-result").textContent = "insert failed: " + err;
  }
});

const initial = new URLSearchParams(location.search).get("consumer");
if (initial) {
  $("consumer").value = initial;
  connect(initial, new URLSearchParams(location.search).get("token") || "");
}
