// Chromium (Debian's, through playwright-core) on the service's https://
// origin: 12 EventSources that all receive their events over one HTTP/2
// connection, then a WebSocket that resumes with last_event_id after the
// service is killed and restarted. Started by
// tests/integration/test_browser_transports.sh, which owns the service: this
// script asks it to kill and restart the service by printing "kill" or
// "start" on stdout and waits for "killed" or "started" on stdin; it prints
// "ok" when every check passed. Everything else goes to stderr.
//
// Environment: PIPER_URL (https://127.0.0.1:PORT), DATABASE_URL,
// CHROMIUM (default /usr/bin/chromium). The certificate is the test's own,
// made by a throwaway CA: Chromium is told to accept it.
import { execFileSync } from "node:child_process";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const base = process.env.PIPER_URL;
const say = (...args) => console.error("[browser]", ...args);
const lines = createInterface({ input: process.stdin });
const replies = lines[Symbol.asyncIterator]();
const SOURCES = 12;

async function ask(request, reply) {
  process.stdout.write(request + "\n");
  const { value, done } = await replies.next();
  if (done || value !== reply) throw new Error(`asked "${request}", got ${done ? "end of input" : `"${value}"`}`);
}

function sql(text) {
  return execFileSync("psql", [process.env.DATABASE_URL, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", text],
                      { encoding: "utf8" }).trim();
}

function insert(consumer, n, label) {
  return sql(`insert into events (type, subscriber, payload)
              select 'insert', '${consumer}', jsonb_build_object('label', '${label}', 'n', n)
              from generate_series(1, ${n}) n order by n returning id`).split("\n").map(Number);
}

// A series of the service's /metrics, read with curl over HTTP/1.1 (so that
// reading it adds no HTTP/2 connection); CURL_CA_BUNDLE names the test's CA.
function metric(series) {
  const text = execFileSync("curl", ["-fsS", "--http1.1", `${base}/metrics`], { encoding: "utf8" });
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

async function waitUntil(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function eventSources(page) {
  // Every EventSource of the page on the same origin: one h2 connection.
  await page.evaluate((count) => {
    window.received = Array.from({ length: count }, () => []);
    window.sources = [];
    for (let i = 0; i < count; i++) {
      const es = new EventSource(`/events?consumer_id=many`);
      es.addEventListener("insert", (e) => window.received[i].push(Number(e.lastEventId)));
      window.sources.push(es);
    }
  }, SOURCES);
  await waitUntil(() => metric('event_piper_streams_open{transport="h2"}') === SOURCES, 20000,
                  `${SOURCES} h2 streams`);
  const conns = metric('event_piper_connections_open{transport="h2"}');
  if (conns !== 1) throw new Error(`${SOURCES} EventSources: ${conns} h2 connections, not 1`);
  const http1 = metric('event_piper_streams_open{transport="http1"}');
  if (http1 !== 0) throw new Error(`${http1} HTTP/1.1 streams open, none expected`);
  const ids = insert("many", 3, "es");
  await page.waitForFunction((want) => window.received.every((r) => JSON.stringify(r) === JSON.stringify(want)),
                             ids, { timeout: 20000 })
    .catch(async () => {
      throw new Error(`not every EventSource got ${ids}: ${JSON.stringify(await page.evaluate(() => window.received))}`);
    });
  const protocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
  if (protocol !== "h2") throw new Error(`the page came over ${protocol}, not h2`);
  say(`${SOURCES} EventSources got ids ${ids} over one h2 connection`);
  await page.evaluate(() => window.sources.forEach((es) => es.close()));
  await waitUntil(() => metric('event_piper_streams_open{transport="h2"}') === 0, 20000, "the streams to close");
}

async function webSocket(page) {
  const first = insert("wsb", 2, "before");
  // A resume loop as an application would write it: the last id seen goes
  // in last_event_id on every reconnection.
  await page.evaluate((after) => {
    window.ws = { got: [], opens: 0, closes: [] };
    let last = after;
    const open = () => {
      const socket = new WebSocket(`wss://${location.host}/ws/wsb?last_event_id=${last}`);
      socket.onopen = () => window.ws.opens++;
      socket.onmessage = (m) => {
        const event = JSON.parse(m.data);
        window.ws.got.push(Number(event.id));
        last = event.id;
      };
      socket.onclose = (e) => {
        window.ws.closes.push(e.code);
        setTimeout(open, 300);
      };
    };
    open();
  }, first[0] - 1);
  await page.waitForFunction((n) => window.ws.got.length >= n, first.length, { timeout: 20000 });
  const ws = metric('event_piper_streams_open{transport="websocket"}');
  if (ws !== 1) throw new Error(`websocket streams open: ${ws}, not 1`);
  await ask("kill", "killed");
  const whileDown = insert("wsb", 2, "down");
  await page.waitForFunction(() => window.ws.closes.length >= 1, null, { timeout: 20000 });
  await ask("start", "started");
  await waitUntil(() => metric('event_piper_streams_open{transport="websocket"}') === 1, 20000,
                  "the WebSocket to reconnect");
  const after = insert("wsb", 2, "after");
  const want = sql(`select id from events where subscriber = 'wsb' order by id`).split("\n").map(Number);
  if (want.length !== first.length + whileDown.length + after.length) throw new Error(`rows: ${want}`);
  await page.waitForFunction((n) => window.ws.got.length >= n, want.length, { timeout: 20000 })
    .catch(async () => {
      throw new Error(`WebSocket got ${JSON.stringify(await page.evaluate(() => window.ws.got))}, want ${want}`);
    });
  const got = await page.evaluate(() => window.ws.got);
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`WebSocket got ${got}, want ${want} (once each)`);
  say(`WebSocket: ${got.length} rows once each across a restart (closes: ${await page.evaluate(() => window.ws.closes)})`);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--ignore-certificate-errors"],
  });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.on("console", (m) => say("page:", m.text()));
    const answer = await page.goto(`${base}/healthz`);
    if (!answer.ok()) throw new Error(`GET /healthz answered ${answer.status()}`);
    await eventSources(page);
    await webSocket(page);
  } finally {
    await browser.close();
  }
  process.stdout.write("ok\n");
}

main().then(() => lines.close(), (err) => {
  say("FAIL:", err.message);
  lines.close();
  process.exitCode = 1;
});
