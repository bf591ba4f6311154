// The hand-rolled alternative event-piper competes with, written the way a
// Node.js developer would: one pg client LISTENs on new_events, http serves
// GET /events, and every notification is written to the open responses of
// its subscriber. bench/run.sh (scenario nodejs) measures it side by side with
// event-piper on the same database, trigger, producer and clients. It has
// no replay, no limits and no slow-consumer policy: it is a yardstick, not
// a product.
'use strict';

const http = require('http');
const { Client } = require('pg');

const port = Number(process.env.PORT || 4100);
const heartbeatMs = 15000;
const streamsByConsumer = new Map(); // X-Consumer-Id -> Set of open responses
let openStreams = 0;

function frameOf(row) {
  return `id: ${row.id}\nevent: ${row.type}\ndata: ${JSON.stringify(row.payload)}\n\n`;
}

function deliver(message) {
  let row;
  try {
    row = JSON.parse(message.payload);
  } catch (err) {
    console.error(`node-reference: bad notification: ${err.message}`);
    return;
  }
  const streams = streamsByConsumer.get(row.subscriber);
  // Rows too large for a notification come as id and subscriber only; the
  // benchmark never sends any, so they are not fetched here.
  if (streams === undefined || row.payload === undefined) return;
  const frame = frameOf(row);
  for (const res of streams) res.write(frame);
}

function openStream(req, res, consumer) {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.write(': connected\n\n');
  let streams = streamsByConsumer.get(consumer);
  if (streams === undefined) {
    streams = new Set();
    streamsByConsumer.set(consumer, streams);
  }
  streams.add(res);
  openStreams++;
  req.on('close', () => {
    streams.delete(res);
    openStreams--;
    if (streams.size === 0) streamsByConsumer.delete(consumer);
  });
}

function reply(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  if (req.url === '/status') return reply(res, 200, { streams: openStreams });
  if (req.method !== 'GET' || req.url !== '/events') return reply(res, 404, { error: 'not found' });
  const consumer = req.headers['x-consumer-id'];
  if (!consumer) return reply(res, 400, { error: 'X-Consumer-Id is required' });
  openStream(req, res, consumer);
});

setInterval(() => {
  for (const streams of streamsByConsumer.values()) for (const res of streams) res.write(':\n\n');
}, heartbeatMs);

async function main() {
  const db = new Client({ connectionString: process.env.DATABASE_URL });
  db.on('notification', deliver);
  db.on('error', (err) => {
    console.error(`node-reference: database: ${err.message}`);
    process.exit(1);
  });
  await db.connect();
  await db.query('LISTEN new_events');
  server.listen(port, process.env.BIND_ADDRESS || '127.0.0.1');
  process.on('SIGTERM', () => process.exit(0));
}

main().catch((err) => {
  console.error(`node-reference: ${err.message}`);
  process.exit(1);
});
