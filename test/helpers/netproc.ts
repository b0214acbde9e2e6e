// Peers for link tests: small node:dgram programs run inside a namespace
// (nsenter --net, so bpffs stays visible), reporting in one JSON line.
import { spawn, type ChildProcess } from 'node:child_process';
import { inNetns } from '../../src/util/run.js';

export interface NodePeer { child: ChildProcess; ready: Promise<void>; done: Promise<string> }

/** Runs a node -e script in netns; the script prints 'ready' when listening and one result line at the end. */
export function nodeIn(ns: string, script: string): NodePeer {
  const child = spawn(inNetns(ns, [process.execPath, '-e', script])[0]!, inNetns(ns, [process.execPath, '-e', script]).slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let readyResolve!: () => void;
  const ready = new Promise<void>((r) => { readyResolve = r; });
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('ready\n')) readyResolve();
  });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const done = new Promise<string>((resolve, reject) => {
    child.on('exit', (code) => {
      if (code === 0) resolve(out.replace('ready\n', '').trim());
      else reject(new Error(`peer exited ${code}: ${err.trim()}`));
    });
  });
  return { child, ready, done };
}

/** A UDP receiver: counts datagrams to addr:port until `want` or quiet for idleMs; prints {"count", "bytes"}. */
export function udpCounter(ns: string, addr: string, port: number, want: number, idleMs = 3000): NodePeer {
  return nodeIn(ns, `
    const s = require('node:dgram').createSocket('udp4');
    let count = 0, bytes = 0, t;
    const end = () => { console.log(JSON.stringify({ count, bytes })); process.exit(0); };
    s.on('message', (m) => { count++; bytes += m.length; clearTimeout(t); if (count >= ${want}) end(); else t = setTimeout(end, ${idleMs}); });
    s.bind(${port}, '${addr}', () => { t = setTimeout(end, ${idleMs * 3}); console.log('ready'); });
  `);
}

/** Sends n datagrams of size bytes from addr to dst:port as fast as it can; prints {"sent"}. */
export function udpSender(ns: string, from: string, dst: string, port: number, n: number, size = 64): NodePeer {
  return nodeIn(ns, `
    const s = require('node:dgram').createSocket('udp4');
    s.bind(0, '${from}', () => {
      console.log('ready');
      let sent = 0;
      for (let i = 0; i < ${n}; i++) { const buf = Buffer.alloc(${size}); buf.writeUInt32BE(i, 0); s.send(buf, ${port}, '${dst}', () => { if (++sent === ${n}) { console.log(JSON.stringify({ sent })); process.exit(0); } }); }
    });
  `);
}
