// Drives the demo page in Debian's chromium through playwright-core (no
// browser download). Started by tests/integration/test_browser.sh, which owns
// the service: this script asks it to kill and restart the service by
// printing "kill" or "start" on stdout and waits for "killed" or "started"
// on stdin. Everything else it has to say goes to stderr.
//
// Environment: PIPER_URL, DATABASE_URL, ARTIFACTS (screenshots),
// CHROMIUM (default /usr/bin/chromium).
import { execFileSync } from "node:child_process";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const base = process.env.PIPER_URL;
const consumer = "web";
const artifacts = process.env.ARTIFACTS;
const say = (...args) => console.error("[browser]", ...args);
const lines = createInterface({ input: process.stdin });
const replies = lines[Symbol.asyncIterator]();

async function ask(request, reply) {
  process.stdout.write(request + "\n");
  const { value, done } = await replies.next();
  if (done || value !== reply) throw new Error(`asked "${request}", got ${done ? "end of input" : `"${value}"`}`);
}

function sql(text) {
  return execFileSync("psql", [process.env.DATABASE_URL, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", text],
                      { encoding: "utf8" }).trim();
}

// Inserts rows for the page's consumer (and one for another consumer, which
// must never show); returns the ids of the page's rows.
function insertRows(label, n) {
  const ids = sql(`insert into events (type, subscriber, payload)
                   select case when n % 2 = 0 then 'insert' else 'order' end, '${consumer}',
                          jsonb_build_object('label', '${label}', 'n', n, 'note', 'café "quoted"')
                   from generate_series(1, ${n}) n order by n returning id`).split("\n").map(Number);
  sql(`insert into events (type, subscriber, payload) values ('insert', 'someone-else', '{"secret": true}')`);
  return ids;
}

function expectedIds() {
  return sql(`select id from events where subscriber = '${consumer}' order by id`).split("\n").map(Number);
}

async function renderedIds(page) {
  return page.$$eval("#events tbody tr", (rows) => rows.map((r) => Number(r.dataset.id)));
}

async function waitForIds(page, ids, what) {
  try {
    await page.waitForFunction((want) => want.every((id) => document.querySelector(`tr[data-id="${id}"]`)),
                               ids, { timeout: 20000 });
  } catch (err) {
    throw new Error(`${what}: ids ${ids} not all shown; shown: ${await renderedIds(page)}`);
  }
}

// Resolves once check() is true, polling every 20 ms; throws what after ms.
async function waitUntil(check, ms, what) {
  for (const deadline = Date.now() + ms; !check(); ) {
    if (Date.now() > deadline) throw new Error(what);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function state(page) {
  return page.textContent("#state");
}

async function main() {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
  say("chromium", browser.version());
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const problems = [];
  page.on("pageerror", (err) => problems.push("page error: " + err.message));
  page.on("console", (msg) => { if (msg.type() === "error" || msg.type() === "warning") say("console:", msg.text()); });
  const streamRequests = [];
  page.on("request", async (req) => {
    if (new URL(req.url()).pathname === "/events") streamRequests.push(await req.allHeaders());
  });
  // Stream requests that found no service: the page retrying by itself.
  let refused = 0;
  page.on("requestfailed", (req) => {
    if (new URL(req.url()).pathname === "/events" && /ERR_CONNECTION_REFUSED/.test(req.failure()?.errorText ?? "")) refused++;
  });

  // 1. The page connects with the consumer id as a query parameter.
  const before = insertRows("before", 2); // not shown: the page starts live
  await page.goto(`${base}/?consumer=${consumer}&types=insert,order`);
  await page.waitForFunction(() => document.querySelector("#state").textContent === "live", null, { timeout: 10000 });
  say("connected");

  // 2. Rows inserted with psql appear, compact JSON, with their type.
  const live = insertRows("live", 4);
  await waitForIds(page, live, "rows inserted while live");
  const first = await page.$$eval(`tr[data-id="${live[0]}"] td`, (cells) => cells.map((c) => c.textContent));
  const wantPayload = JSON.stringify({ n: 1, note: 'café "quoted"', label: "live" });
  if (first[1] !== "order" || first[2] !== wantPayload) throw new Error(`row ${live[0]} shows ${JSON.stringify(first)}, want order ${wantPayload}`);

  // 3. The button inserts through POST /demo/events; the row comes back with
  //    its measured latency.
  await page.click("#insert");
  await page.waitForFunction(() => /^inserted id \d+$/.test(document.querySelector("#insert-result").textContent),
                             null, { timeout: 10000 });
  const demoId = Number((await page.textContent("#insert-result")).split(" ").pop());
  await waitForIds(page, [demoId], "the demo button's row");
  const demoRow = await page.$$eval(`tr[data-id="${demoId}"] td`, (cells) => cells.map((c) => c.textContent));
  if (demoRow[1] !== "demo" || !/^\d+ ms$/.test(demoRow[3])) throw new Error(`demo row shows ${JSON.stringify(demoRow)}`);
  say(`demo insert ${demoId} shown, latency ${demoRow[3]}`);
  await page.screenshot({ path: `${artifacts}/demo-page.png`, fullPage: true });

  // 4. The service dies; rows are committed while it is away; it comes back.
  const lastBefore = Number(await page.textContent("#last-id"));
  await ask("kill", "killed");
  await page.waitForFunction(() => document.querySelector("#state").textContent === "reconnecting", null, { timeout: 10000 });
  const meanwhile = insertRows("while the service was down", 6);
  say(`service down, page says "${await state(page)}", rows ${meanwhile} committed meanwhile`);
  // The service comes back only once the page has retried against the
  // closed port.
  await waitUntil(() => refused > 0, 10000, "the page did not retry while the service was down");
  say(`${refused} reconnect attempt(s) refused while the service was down`);
  await ask("start", "started");
  await waitForIds(page, meanwhile, "rows committed while the service was down");
  const after = insertRows("after the restart", 3);
  await waitForIds(page, after, "rows after the restart");
  await page.waitForFunction(() => document.querySelector("#state").textContent === "live", null, { timeout: 10000 });

  // 5. Exactly the consumer's rows since the page connected, each once, in
  //    order (newest first in the table).
  const want = expectedIds().filter((id) => id > before[before.length - 1]);
  const shown = (await renderedIds(page)).reverse();
  if (JSON.stringify(shown) !== JSON.stringify(want)) throw new Error(`page shows ids ${shown}, want ${want}`);
  const duplicates = Number(await page.textContent("#duplicates"));
  const reconnects = Number(await page.textContent("#reconnects"));
  if (duplicates !== 0) throw new Error(`the page saw ${duplicates} duplicate ids`);
  if (reconnects < 1) throw new Error("the page counted no reconnect");
  const resumed = streamRequests.slice(1).map((h) => h["last-event-id"]);
  if (!resumed.includes(String(lastBefore))) throw new Error(`no reconnect sent Last-Event-ID ${lastBefore}: ${JSON.stringify(resumed)}`);
  say(`${shown.length} rows shown once each; ${streamRequests.length} stream requests, Last-Event-ID on reconnects: ${resumed}`);
  if (problems.length) throw new Error(problems.join("; "));

  // 6. How it looks on a phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${artifacts}/demo-page-phone.png`, fullPage: false });
  await browser.close();
  lines.close(); // the open stdin would keep node running
  process.stdout.write("ok\n");
}

main().catch((err) => {
  say("FAIL:", err.message);
  process.exit(1);
});
