// nginx in the lab, for the proxy and mtls workloads: as the peer reverse
// proxy (one worker, upstream keepalive, access_log off, optionally TLS with
// a required client certificate) and as the fixed hello upstream that every
// proxy under test forwards to. Each instance runs in the foreground
// (daemon off) from its own temporary prefix directory in one of the lab's
// namespaces (the server's unless told), so nothing touches /etc/nginx or
// /var/log/nginx.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../lab/topo.js';
import { tryRun } from '../util/run.js';
import { pinned, startServer, stopServer, withChildren, type ServerProc } from './tcp-measure.js';
import type { StartedServer, TlsFiles } from './http.js';
import { HELLO_BODY } from '../apps/hello.js';

/** Why nginx cannot be used here, or null. */
export function nginxUnavailable(): string | null {
  const r = tryRun(['nginx', '-v']);
  if (r.status === null) return 'nginx is not installed';
  return null;
}

export function nginxVersion(): string | null {
  const r = tryRun(['nginx', '-v']);
  const m = /nginx\/(\S+)/.exec(`${r.stdout}${r.stderr}`);
  return m ? m[1]! : null;
}

export interface NginxProxyConfig {
  listen: { addr: string; port: number };
  upstream: { addr: string; port: number };
  tls?: TlsFiles;
}

/** nginx string literal: the hello body with its newline escaped. */
function nginxString(s: string): string { return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`; }

function common(dir: string): string {
  return [
    'worker_processes 1;',
    'daemon off;',
    'master_process on;',
    'user root;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} warn;`,
    'worker_rlimit_nofile 65536;',
    'events { worker_connections 16384; multi_accept on; }',
  ].join('\n');
}

function temps(dir: string): string {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, `${t}_temp`)};`).join('\n');
}

/** Writes the reverse-proxy config into dir; returns its path. */
export function writeProxyConf(dir: string, c: NginxProxyConfig): string {
  mkdirSync(dir, { recursive: true });
  const tls = c.tls ? [
    `    ssl_certificate ${c.tls.cert};`,
    `    ssl_certificate_key ${c.tls.key};`,
    `    ssl_client_certificate ${c.tls.ca};`,
    '    ssl_verify_client on;',
    '    ssl_protocols TLSv1.3;',
    '    ssl_session_cache off;',
  ].join('\n') : '';
  const conf = `${common(dir)}
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
${temps(dir)}
  upstream hello {
    server ${c.upstream.addr}:${c.upstream.port};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen ${c.listen.addr}:${c.listen.port}${c.tls ? ' ssl' : ''} backlog=4096;
${tls}
    location / {
      proxy_pass http://hello;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`;
  const path = join(dir, 'nginx.conf');
  writeFileSync(path, conf);
  return path;
}

/** Writes the hello-upstream config into dir (a fixed 200 with the hello app's body). */
export function writeUpstreamConf(dir: string, listen: { addr: string; port: number }): string {
  mkdirSync(dir, { recursive: true });
  const conf = `${common(dir)}
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
${temps(dir)}
  server {
    listen ${listen.addr}:${listen.port} backlog=4096;
    location / {
      default_type text/plain;
      return 200 ${nginxString(HELLO_BODY)};
    }
  }
}
`;
  const path = join(dir, 'nginx.conf');
  writeFileSync(path, conf);
  return path;
}

/** Which of the lab's namespaces an nginx runs in: the server's (default) or the client's. */
export type LabSide = 'server' | 'client';

function inSide(lab: Lab, side: LabSide, argv: readonly string[]): string[] { return side === 'client' ? lab.client(argv) : lab.server(argv); }

/** True when something listens on addr:port (TCP) in the lab's namespace on that side. */
export function listening(lab: Lab, addr: string, port: number, side: LabSide = 'server'): boolean {
  const r = tryRun(inSide(lab, side, ['ss', '-Hltn', `src ${addr}:${port}`]));
  return r.status === 0 && r.stdout.trim().length > 0;
}

/** Starts nginx with conf in the lab's server namespace (or the client's); its CPU is the master's plus the worker's. */
export async function startNginx(lab: Lab, dir: string, conf: string, listen: { addr: string; port: number }, o: { cpu?: number; nice?: number; side?: LabSide } = {}): Promise<StartedServer & { proc: ServerProc }> {
  const side = o.side ?? 'server';
  // The config test first: a bad config is reported as such, not as a timeout.
  const t = tryRun(inSide(lab, side, ['nginx', '-t', '-q', '-p', dir, '-e', join(dir, 'error.log'), '-c', conf]));
  if (t.status !== 0) throw new Error(`nginx -t failed: ${(t.stderr || t.stdout).trim().slice(-300)}`);
  const p = await startServer([...pinned(o.cpu, o.nice), ...inSide(lab, side, ['nginx', '-p', dir, '-e', join(dir, 'error.log'), '-c', conf])],
    () => listening(lab, listen.addr, listen.port, side));
  return { proc: p, pids: () => withChildren(p.pid), stop: () => stopServer(p) };
}
