// event-piper demo page: one EventSource, its state, and a test-insert button.
// EventSource reconnects by itself and sends Last-Event-ID; the page only
// shows what happens, and counts any event id it sees twice (it never should).
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_ROWS = 500; // the table keeps the newest rows; the counters keep counting
let source = null;
let opened = 0;
let count = 0;
let duplicates = 0;
let listening = new Set();
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

function cell(text, asCode) {
  const td = document.createElement("td");
  if (asCode) {
    const code = document.createElement("code");
    code.textContent = text;
    td.appendChild(code);
  } else {
    td.textContent = text;
  }
  return td;
}

function showEvent(e) {
  const received = Date.now();
  let payload = e.data;
  let latency = "";
  try {
    const parsed = JSON.parse(e.data);
    payload = JSON.stringify(parsed);
    if (parsed && typeof parsed.sent_at === "number") latency = Math.max(0, received - parsed.sent_at) + " ms";
  } catch (_) { /* shown as text */ }
  if (seen.has(e.lastEventId)) {
    duplicates++;
    $("duplicates").textContent = duplicates;
    $("duplicates").parentElement.hidden = false;
  }
  seen.add(e.lastEventId);
  count++;
  $("count").textContent = count;
  $("last-id").textContent = e.lastEventId;
  const row = document.createElement("tr");
  row.className = "fresh";
  row.dataset.id = e.lastEventId;
  row.append(cell(e.lastEventId), cell(e.type), cell(payload, true), cell(latency));
  const body = $("events").tBodies[0];
  body.prepend(row);
  while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
}

// EventSource hands named events (the row's type) only to listeners for that
// name, so the page listens for the types listed in the form; "message" is
// what an event without a type arrives as.
function eventTypes() {
  const typed = $("types").value.split(/[\s,]+/).filter(Boolean);
  return new Set(["message", "demo", ...typed]);
}

function listen() {
  if (!source) return;
  const wanted = eventTypes();
  for (const type of listening) if (!wanted.has(type)) source.removeEventListener(type, showEvent);
  for (const type of wanted) if (!listening.has(type)) source.addEventListener(type, showEvent);
  listening = wanted;
}

function connect(consumer, token) {
  if (source) source.close();
  opened = 0;
  listening = new Set();
  source = new EventSource(streamUrl(consumer, token));
  setState("connecting", "connecting");
  source.onopen = () => {
    opened++;
    $("reconnects").textContent = Math.max(0, opened - 1);
    setState("open", "live");
    $("insert").disabled = false;
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) setState("closed", "closed (check the consumer id or token)");
    else setState("connecting", "reconnecting");
  };
  listen();
}

$("connect").addEventListener("submit", (ev) => {
  ev.preventDefault();
  connect($("consumer").value.trim(), $("token").value.trim());
});
$("types").addEventListener("change", listen);

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

const query = new URLSearchParams(location.search);
if (query.get("types")) $("types").value = query.get("types");
if (query.get("consumer")) {
  $("consumer").value = query.get("consumer");
  connect(query.get("consumer"), query.get("token") || "");
}
