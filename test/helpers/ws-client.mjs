// A ws client for tests that run it in another network namespace:
//   node ws-client.mjs URL
// Sends a few text messages and one large binary one, checks each echo, then
// closes (1000) and prints one JSON line: what came back and how it closed.
import { WebSocket } from 'ws';

const url = process.argv[2];
const ws = new WebSocket(url, { perMessageDeflate: false });
const result = { opened: false, texts: [], bigOk: false, bigLength: 0, close: null, error: null };
const big = Buffer.alloc(4 * 1024 * 1024);
for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
const timer = setTimeout(() => { result.error = 'timed out'; ws.terminate(); }, 60_000);

ws.on('open', () => {
  result.opened = true;
  for (let i = 0; i < 3; i++) ws.send(`message ${i}`);
  ws.send(big);
});
ws.on('message', (m, binary) => {
  if (!binary) { result.texts.push(m.toString()); return; }
  result.bigLength = m.length;
  result.bigOk = Buffer.compare(m, big) === 0;
  ws.close(1000, 'done');
});
ws.on('close', (code, reason) => {
  clearTimeout(timer);
  result.close = { code, reason: reason.toString() };
  process.stdout.write(`${JSON.stringify(result)}\n`);
});
ws.on('error', (e) => { result.error = e.message; });
