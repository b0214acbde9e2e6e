// The long-lived node proxy behind `strata proxy --config F`.
//
// State is split in two so a reload never drops a connection:
//
// - A *slot* per listener owns what clients are connected to: the bound
//   listener, the HttpServer and its connections. A slot survives reloads
//   unless its address, port, transport, protocol or server limits change.
// - A *generation* owns everything a request is routed with: routes (one
//   Proxy per listener), clusters and their upstream pools, TLS contexts,
//   policies and the access log. Each slot's handler is an indirection
//   through the slot's current generation, so SIGHUP swaps in a new one for
//   NEW requests in one synchronous step; requests already in flight finish
//   on the old one, which is closed (pools included) once its last request
//   is done, or after the drain timeout.
//
// SIGHUP: re-read and validate; on any error (file, TLS files, a transport
// that cannot open, a port that cannot bind, anything thrown before the
// swap) log it, count it, and keep the old config.
// SIGTERM/SIGINT: not ready, stop accepting, close idle keep-alive
// connections, let in-flight requests finish (bounded by drain.timeout),
// close pools and transports (detaching the XDP program), exit 0. A second
// signal during the drain cuts it short.
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { ListenerConfig, ProxyConfig } from '../config/types.js';
import type { L7Listener, L7Socket, L7Transport, TransportKind } from '../l7/transport/types.js';
import type { Handler, HttpServer, ServerRequest, ServerResponse, ServerStats } from '../l7/server/index.js';
import type { CanonicalRequest, Proxy, ProxyStats } from '../l7/proxy/index.js';
import type { TlsContextManager } from '../l7/tls/context.js';
import type { Lab } from '../lab/topo.js';
import type { AdminServer } from '../admin/server.js';
import { Registry, type Metric } from '../obs/metrics.js';
import { UnavailableError } from '../util/errors.js';
import { chooseTransport, describeChoice, probeHost, type TransportChoice, type TransportProbe } from './transport-choice.js';
import { Logger } from './log.js';
import { targetFor, type QueryMode } from '../flows/redact.js';

export interface NodeProxyOptions {
  file: string;
  /** The lab we run in (its server namespace), or null: loopback defaults. */
  lab: Lab | null;
  logger?: Logger;
  /** Injected transport probe (tests); default probeHost(). */
  probe?: () => Promise<TransportProbe>;
  /** Where `listening …` lines go once all listeners are up (default stdout). */
  out?: { write(s: string): unknown };
  /** Opens the transport of a kind instead of the real one (in-process benches and tests over simulated stacks). */
  openTransport?: (kind: TransportKind) => Promise<L7Transport>;
}

/** An access or verdict line; `url` / `path` are request targets, redacted on the way in. */
interface AccessLine { url?: string; path?: string; [field: string]: unknown }
interface AccessLog { write(o: AccessLine): void; close(): void }

/** The stack transports' link counters on /metrics (AF_XDP socket or TAP fd), read at scrape time. */
const LINK_COUNTERS: readonly [string, string, string][] = [
  ['rxPackets', 'strata_link_rx_packets_total', 'Frames the stack took from its link (AF_XDP RX ring or TAP).'],
  ['rxBytes', 'strata_link_rx_bytes_total', 'Bytes the stack took from its link.'],
  ['txPackets', 'strata_link_tx_packets_total', 'Frames the link accepted for sending.'],
  ['txBytes', 'strata_link_tx_bytes_total', 'Bytes the link accepted for sending.'],
  ['txDropped', 'strata_link_tx_dropped_total', 'Frames the link could not queue (TX ring or device full).'],
  ['rxDropped', 'strata_link_rx_dropped_total', 'Frames dropped on receive for lack of buffers, where the link knows (AF_XDP: RX ring full, no fill buffer).'],
];

/** Everything a request is routed with; replaced as a whole on reload. */
class Generation {
  inflight = 0;
  retired = false;
  closed = false;
  readonly proxies = new Map<string, Proxy>();
  readonly clusters: { close(): void }[] = [];
  tlsCtx = new Map<string, TlsContextManager>();
  access: AccessLog | null = null;
  mtls: typeof import('../l7/tls/index.js') | null = null;
  private onIdle: (() => void) | null = null;

  constructor(readonly id: number, readonly cfg: ProxyConfig) {}

  /** Shared by every request of this generation: no closure per request. */
  readonly done = (): void => {
    if (--this.inflight === 0 && this.retired && this.onIdle !== null) this.onIdle();
  };

  /** Resolves once no request uses this generation (or at once if none does). */
  idle(): Promise<void> {
    if (this.inflight <= 0) return Promise.resolve();
    return new Promise((resolve) => { this.onIdle = resolve; });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.proxies.values()) p.close();
    for (const c of this.clusters) c.close();
    for (const m of this.tlsCtx.values()) m.close();
    this.access?.close();
  }
}

/** What clients connect to; survives reloads that do not change its key. */
class Slot {
  gen: Generation;
  proxy: Proxy;
  bound: L7Listener | null = null;
  closing = false;

  constructor(readonly cfg: ListenerConfig, readonly choice: TransportChoice, readonly host: string, readonly server: HttpServer, gen: Generation) {
    this.gen = gen;
    this.proxy = gen.proxies.get(cfg.name)!;
  }

  /** The HttpServer's handler: the current generation's proxy, counted in flight. */
  readonly handler: Handler = (req: ServerRequest, res: ServerResponse) => {
    const g = this.gen;
    g.inflight++;
    // Runs at 'finish' (the last byte handed to the socket) or at 'close' (the connection died first): only one fires.
    res._onSettled = g.done;
    return this.proxy.handler(req, res);
  };

  get key(): string { return slotKey(this.cfg, this.choice.kind, this.host); }
  /** Two slots with the same bind key cannot be bound at once. */
  get bindKey(): string { return `${this.choice.kind} ${this.host}:${this.cfg.port}`; }
}

function slotKey(l: ListenerConfig, kind: TransportKind, host: string): string {
  return JSON.stringify([kind, host, l.port, l.protocol, l.tls !== null, l.timeouts, l.maxHeaderBytes, l.maxConnections, l.maxPipelined, l.outputHighWaterMark]);
}

export class ReloadError extends Error {}

export class NodeProxy {
  readonly log: Logger;
  readonly registry = new Registry();
  admin: AdminServer | null = null;
  private gen: Generation | null = null;
  private genSeq = 0;
  private readonly slots = new Map<string, Slot>();
  private readonly transports = new Map<TransportKind, L7Transport>();
  private readonly retiredStats: { listener: string; proxy: ProxyStats }[] = [];
  private readonly retiredServers: { listener: string; stats: ServerStats }[] = [];
  private readonly closingGens = new Set<Generation>();
  private readonly closingSlots = new Set<Promise<void>>();
  /** Slots still draining after a reload took them out (their transport must stay open). */
  private readonly drainingSlots = new Set<Slot>();
  private readonly stackStats = new Map<TransportKind, object>();
  /** The stack transport last opened per kind (its TCP and link counters stay readable after a reload closed it). */
  private readonly stackTransports = new Map<TransportKind, L7Transport>();
  private ready = false;
  private draining = false;
  private reloading: Promise<boolean> | null = null;
  private reloadAgain = false;
  private probe: TransportProbe | null = null;
  private readonly reloads = { ok: 0, failed: 0 };
  private drainTimeoutMs = 30_000;
  private readonly metricsDone = new Set<string>();
  private mods!: {
    config: typeof import('../config/index.js');
    transport: typeof import('../l7/transport/index.js');
    server: typeof import('../l7/server/index.js');
    proxy: typeof import('../l7/proxy/index.js');
    netns: typeof import('../cli/netns-exec.js');
    flows: typeof import('../flows/http.js');
  };
  /** Joins what only the proxy knows (policy verdicts) to the flow records; idle while nobody listens. */
  private join!: import('../flows/http.js').FlowJoin;

  constructor(private readonly opts: NodeProxyOptions) {
    this.log = opts.logger ?? new Logger();
  }

  get generation(): number { return this.gen?.id ?? 0; }
  get isReady(): boolean { return this.ready && !this.draining; }

  /** Loads the config, starts the admin listener, opens every listener; throws (after cleaning up) on failure. */
  async start(): Promise<string[]> {
    this.mods = {
      config: await import('../config/index.js'),
      transport: await import('../l7/transport/index.js'),
      server: await import('../l7/server/index.js'),
      proxy: await import('../l7/proxy/index.js'),
      netns: await import('../cli/netns-exec.js'),
      flows: await import('../flows/http.js'),
    };
    this.join = new this.mods.flows.FlowJoin();
    const cfg = this.mods.config.loadConfig(this.opts.file);
    this.log.configure(cfg.logging);
    this.drainTimeoutMs = cfg.drain.timeoutMs;
    this.log.info('start', { pid: process.pid, config: cfg.file, listeners: cfg.listeners.length, clusters: cfg.clusters.length, routes: cfg.routes.length, lab: this.opts.lab?.prefix ?? null });
    try {
      if (cfg.admin !== null) await this.startAdmin(cfg.admin);
      const gen = await this.build(cfg);
      const lines: string[] = [];
      try {
        for (const l of cfg.listeners) {
          const slot = await this.openSlot(l, await this.choose(l), gen);
          lines.push(`listening ${slot.bound!.host}:${slot.bound!.port} transport=${slot.choice.kind}`);
        }
      } catch (e) {
        gen.close();
        throw e;
      }
      this.gen = gen;
      this.applyL4Deny(cfg);
      this.registerMetrics();
      this.ready = true;
      for (const line of lines) (this.opts.out ?? process.stdout).write(`${line}\n`);
      this.log.info('ready', { generation: gen.id, listeners: [...this.slots.values()].map((s) => ({ name: s.cfg.name, address: s.bound!.host, port: s.bound!.port, transport: s.choice.kind })) });
      return lines;
    } catch (e) {
      await this.shutdownNow();
      throw e;
    }
  }

  private async startAdmin(a: { address: string; port: number }): Promise<void> {
    const { startAdminServer } = await import('../admin/server.js');
    this.admin = await startAdminServer({
      host: a.address, port: a.port, registry: this.registry, log: this.log,
      ready: () => this.draining ? { ready: false, reason: 'draining' } : this.ready ? true : { ready: false, reason: 'starting' },
    });
    const ad = this.admin.address!;
    this.log.info('admin listening', { address: ad.address, port: ad.port });
  }

  private async choose(l: ListenerConfig): Promise<TransportChoice> {
    const lab = this.opts.lab;
    if (l.transport === 'auto' && this.probe === null) {
      this.probe = await (this.opts.probe ?? (() => probeHost({ afxdp: lab?.serverIface ?? 's0', tap: lab?.tapIface ?? 'tap0' })))();
    }
    const probe = this.probe ?? { afxdp: { available: true }, tap: { available: true } };
    const c = chooseTransport(l.transport, probe, l.address);
    if (l.transport === 'auto') this.log.info('transport chosen', { listener: l.name, transport: c.kind, reason: c.reason, skipped: c.skipped, summary: describeChoice(c) });
    else this.log.info('transport configured', { listener: l.name, transport: c.kind });
    return c;
  }

  private hostFor(l: ListenerConfig, kind: TransportKind): string {
    return l.address === '0.0.0.0' && kind !== 'kernel' ? this.mods.netns.defaultHost(kind, this.opts.lab) : l.address;
  }

  private async transportFor(kind: TransportKind, cfg: ProxyConfig): Promise<L7Transport> {
    let t = this.transports.get(kind);
    if (t !== undefined) return t;
    const lab = this.opts.lab;
    if (this.opts.openTransport !== undefined) {
      t = await this.opts.openTransport(kind);
      this.transports.set(kind, t);
      return t;
    }
    if (kind === 'afxdp' && lab !== null) this.mods.netns.prepareLabForAfxdp(lab);
    // A stack transport's address is the first listener's that names one, else the lab's target.
    const l = cfg.listeners.find((x) => x.transport === kind && x.address !== '0.0.0.0');
    const before = signalListeners();
    t = await this.mods.transport.openTransport(kind, kind === 'kernel' ? {} : {
      addr: l?.address ?? this.mods.netns.defaultHost(kind, lab),
      ...(lab !== null ? { netns: lab.serverNs, pinDir: lab.pinDir, ...(kind === 'tap' ? { gateway: lab.tapKernelAddr } : {}) } : {}),
    });
    // The XDP loader's default signal handlers detach the program the moment
    // SIGTERM/SIGHUP arrives, which would cut off a drain or a reload. This
    // process handles those signals and detaches when it closes the transport;
    // the loader's process 'exit' hook stays as the last resort.
    removeNewSignalListeners(before);
    this.transports.set(kind, t);
    const st = (t as unknown as { stack?: { stats?: object } }).stack?.stats;
    if (st !== undefined) {
      this.stackStats.set(kind, st);
      this.stackTransports.set(kind, t);
      if (!this.metricsDone.has(`stack ${kind}`)) {
        // Registered once per kind and read through the transport open now, so a transport closed and reopened by reloads keeps one series.
        this.metricsDone.add(`stack ${kind}`);
        const { registerStackMetrics } = await import('../stack/stats.js');
        const view = new globalThis.Proxy(st, { get: (_t, k) => (this.stackStats.get(kind) as Record<string | symbol, unknown>)[k] });
        registerStackMetrics(this.registry, view as Parameters<typeof registerStackMetrics>[1], { transport: kind });
        // TCP's counters and the link's, read the same way through the transport open now.
        const { registerTcpMetrics } = await import('../stack/tcp/metrics.js');
        const cur = (): { tcp: { counters: Record<string | symbol, unknown> }; link: { stats(): Record<string, number> } } =>
          this.stackTransports.get(kind) as unknown as { tcp: { counters: Record<string | symbol, unknown> }; link: { stats(): Record<string, number> } };
        const counters = new globalThis.Proxy({}, { get: (_t, k) => cur().tcp.counters[k] });
        registerTcpMetrics(this.registry, counters as Parameters<typeof registerTcpMetrics>[1], { transport: kind });
        for (const [f, name, help] of LINK_COUNTERS) this.registry.counterFunc(name, help, () => cur().link.stats()[f] ?? 0, { transport: kind });
      }
    }
    if (kind === 'afxdp' && !this.metricsDone.has('xdp')) {
      // The XDP layer on /metrics: verdicts by reason, read (a map lookup per CPU) only when scraped.
      this.metricsDone.add('xdp');
      const { REASON_NAMES } = await import('../xdp/shared.js');
      const read = (reason: (typeof REASON_NAMES)[number], f: 'packets' | 'bytes') => (): number => {
        const x = this.transports.get('afxdp') as unknown as { xdpCounters?: () => Record<string, { packets: number; bytes: number }> | null } | undefined;
        return x?.xdpCounters?.()?.[reason]?.[f] ?? 0;
      };
      for (const r of REASON_NAMES) {
        this.registry.counterFunc('strata_xdp_packets_total', 'Packets seen by the XDP program, by verdict reason.', read(r, 'packets'), { reason: r });
        this.registry.counterFunc('strata_xdp_bytes_total', 'Bytes seen by the XDP program, by verdict reason.', read(r, 'bytes'), { reason: r });
      }
    }
    this.log.info('transport opened', { transport: kind });
    return t;
  }

  /**
   * Pure L3/L4 deny rules of the policies (no L7 part) go to every open
   * transport's earliest layer: XDP on AF_XDP, conntrack on TAP, accept() on
   * the kernel. Replaced wholesale on each reload.
   */
  private applyL4Deny(cfg: ProxyConfig): void {
    const entries = this.mods.config.configL4DenyEntries(cfg);
    for (const [kind, t] of this.transports) {
      try {
        const r = t.setL4Deny(entries);
        if (entries.length > 0 || r.installed > 0) this.log.info('l4 policy', { transport: kind, where: r.where, installed: r.installed, skipped: r.skipped });
      } catch (e) {
        this.log.error('l4 policy failed', { transport: kind, error: (e as Error).message });
      }
    }
  }

  /** Builds a generation (routes, clusters, TLS, policies, access log); closes what it made on failure. */
  private async build(cfg: ProxyConfig): Promise<Generation> {
    const { config } = this.mods;
    const { Proxy, routesFor, clusterFromConfig } = this.mods.proxy;
    const gen = new Generation(++this.genSeq, cfg);
    try {
      const tlsNeeded = cfg.listeners.some((l) => l.tls !== null) || cfg.clusters.some((c) => c.tls !== null);
      if (tlsNeeded) {
        gen.tlsCtx = config.createTlsContexts(cfg);
        gen.mtls = await import('../l7/tls/index.js');
      }
      const mtls = gen.mtls;
      const clusters = [];
      for (const c of cfg.clusters) {
        clusters.push(await clusterFromConfig(c, {
          transportFor: (k) => this.transportFor(k, cfg),
          wrapFor: (tlsName, expect) => (s: L7Socket) => new Promise<L7Socket>((resolve, reject) => {
            const t = mtls!.wrapClient(s as Duplex, gen.tlsCtx.get(tlsName)!, expect !== null ? { expectServer: expect } : {});
            t.once('secureConnect', () => resolve(t as unknown as L7Socket));
            t.once('error', reject);
          }),
        }));
        gen.clusters.push(clusters[clusters.length - 1]!);
      }
      const policies = config.configPolicies(cfg);
      const access = accessLog(cfg.logging.accessLog, cfg.logging.showQueryStrings ? 'all' : 'redacted');
      gen.access = access;
      for (const l of cfg.listeners) {
        const lp = policies.forListener(l.name);
        // The policy decides on the proxy's canonical request (target path, authority), never on the raw target or Host.
        const policy = lp.selected ? (req: ServerRequest, t: CanonicalRequest) => {
          const sock = req.socket as unknown as TLSSocket;
          const id = mtls !== null && l.tls !== null ? mtls.peerIdentity(sock) : null;
          const v = lp.evaluate({ port: l.port, srcAddr: req.remoteAddress, identity: id, method: req.method, path: t.target, host: t.authority, header: (n) => (n === 'host' ? t.authority : req.headers[n]) });
          this.join.notePolicy(req, { action: v.allowed ? 'allow' : 'deny', rule: String(v.rule), policy: v.policy ?? null, reason: v.reason });
          if (!v.allowed && access) access.write({ verdict: 'deny', listener: l.name, policy: v.policy, rule: v.rule, reason: v.reason, method: req.method, path: t.target, authority: t.authority, client: req.remoteAddress, identity: id?.spiffeId ?? null });
          return v.allowed;
        } : null;
        gen.proxies.set(l.name, new Proxy({
          routes: routesFor(cfg, l.name), clusters, scheme: l.tls !== null ? 'https' : 'http', listenerPort: l.port, policy,
          upgradeTypes: l.upgrade.types, tunnelIdleTimeoutMs: l.upgrade.idleTimeoutMs, escapedSlashes: l.escapedSlashes,
          // The upstream chosen and the tries made join the request's flow record.
          onLog: (e, req) => { this.join.noteUpstream(req, e); access?.write({ listener: l.name, ...e }); },
        }));
      }
    } catch (e) {
      gen.close();
      throw e;
    }
    return gen;
  }

  /**
   * Binds a listener for `l` serving generation `gen`. The acceptor is ours
   * for plain and TLS listeners alike (the server only adopts connections),
   * so closing a slot stops accepting at once without waiting for the
   * transport's listener to see every connection end.
   */
  private async openSlot(l: ListenerConfig, choice: TransportChoice, gen: Generation, register = true): Promise<Slot> {
    const { HttpServer } = this.mods.server;
    const host = this.hostFor(l, choice.kind);
    const slotRef: { s: Slot | null } = { s: null };
    // One flow record per exchange (and per connection) while someone follows /flows; a direct call otherwise.
    const observed = this.mods.flows.observeHttp((req, res) => slotRef.s!.handler(req, res), {
      ctx: {
        transport: choice.kind, scheme: l.tls !== null ? 'https' : 'http', ...(choice.kind === 'afxdp' ? { xdpVerdict: 'redirected' } : {}),
        // Read when a record is built, so a reload that flips logging.showQueryStrings applies to the next record.
        get query(): QueryMode { return slotRef.s?.gen.cfg.logging.showQueryStrings === true ? 'all' : 'redacted'; },
      },
      enrich: this.join.enrich,
    });
    const server = new HttpServer(observed, {
      headersTimeoutMs: l.timeouts.headerMs, keepAliveTimeoutMs: l.timeouts.idleMs, requestTimeoutMs: l.timeouts.requestMs,
      maxHeaderSize: l.maxHeaderBytes, closeTimeoutMs: this.drainTimeoutMs,
      maxPipelined: l.maxPipelined, outputHighWaterMark: l.outputHighWaterMark,
      ...(l.maxConnections > 0 ? { maxConnections: l.maxConnections } : {}),
      // Upgrade requests take the same observed path, counted in flight until their tunnel ends; which ones is the current generation's call.
      onUpgrade: this.mods.server.upgradeVia(observed), shouldUpgrade: (req) => slotRef.s!.proxy.shouldUpgrade(req),
    });
    const slot = new Slot(l, choice, host, server, gen);
    slotRef.s = slot;
    const transport = await this.transportFor(choice.kind, gen.cfg);
    slot.bound = await transport.listen(l.port, host, l.tls === null ? (s) => server.accept(s) : (s) => {
      // The current generation's context: a reload with new files applies to new handshakes.
      const g = slot.gen;
      const ctx = g.tlsCtx.get(g.cfg.listeners.find((x) => x.name === l.name)?.tls ?? l.tls!);
      if (ctx === undefined || g.mtls === null) { s.destroy(); return; }
      const t = g.mtls.wrapServer(s as Duplex, ctx);
      t.on('error', () => t.destroy());
      server.accept(t as unknown as L7Socket);
    });
    if (register) this.slots.set(l.name, slot);
    this.log.info('listening', { listener: l.name, address: slot.bound.host, port: slot.bound.port, transport: choice.kind, tls: l.tls !== null, generation: gen.id });
    return slot;
  }

  /** Graceful close of one slot: stop accepting, close idle connections, let in-flight requests finish. */
  private closeSlot(slot: Slot, why: string): Promise<void> {
    if (slot.closing) return Promise.resolve();
    slot.closing = true;
    this.retiredServers.push({ listener: slot.cfg.name, stats: slot.server.stats });
    // The listening socket closes now; the promise (node:net) settles only when its connections are gone.
    const stopped = slot.bound?.close() ?? Promise.resolve();
    this.drainingSlots.add(slot);
    const p = (async () => {
      await slot.server.close();
      await stopped;
      this.drainingSlots.delete(slot);
      this.log.info('listener closed', { listener: slot.cfg.name, reason: why });
      await this.gcTransports();
    })();
    this.closingSlots.add(p);
    void p.finally(() => this.closingSlots.delete(p));
    return p;
  }

  /**
   * SIGHUP. Resolves true when the new config is live, false when it was
   * rejected (the old one keeps running). Reloads are serialised; a SIGHUP
   * during a reload runs one more afterwards.
   */
  reload(): Promise<boolean> {
    if (this.draining) return Promise.resolve(false);
    if (this.reloading !== null) { this.reloadAgain = true; return this.reloading; }
    const run = async (): Promise<boolean> => {
      let ok = false;
      do {
        this.reloadAgain = false;
        const before = this.gen;
        try {
          ok = await this.reloadOnce();
        } catch (e) {
          // Whatever throws (reading, validating, compiling, building): the process lives on. Before the swap the
          // old generation still serves; after it, the new one does.
          ok = this.reloadFailed('unexpected error', [(e as Error).message], this.gen === before ? 'previous config' : 'new config');
        }
      } while (this.reloadAgain && !this.draining);
      return ok;
    };
    this.reloading = run().finally(() => { this.reloading = null; void this.gcTransports(); });
    return this.reloading;
  }

  private async reloadOnce(): Promise<boolean> {
    const { config } = this.mods;
    this.log.info('reload start', { config: this.opts.file, generation: this.generation });
    let cfg: ProxyConfig;
    // One read of the file, validated as --check does (TLS files included).
    try { cfg = config.loadConfig(this.opts.file, { checkFiles: true }); } catch (e) { return this.reloadFailed('invalid config', (e as Error).message.split('\n')); }
    const old = this.gen!;
    let gen: Generation;
    try {
      gen = await this.build(cfg);
    } catch (e) {
      return this.reloadFailed(e instanceof UnavailableError ? 'transport unavailable' : 'cannot build', [(e as Error).message]);
    }

    // Listener plan: keep, add, replace (key changed) or remove.
    const keep: Slot[] = [];
    const add: { l: ListenerConfig; choice: TransportChoice; replaces: Slot | null }[] = [];
    this.probe = null; // the host may have changed (lab up or down): probe again
    for (const l of cfg.listeners) {
      let choice: TransportChoice;
      const cur = this.slots.get(l.name);
      if (cur !== undefined && cur.cfg.transport === l.transport && l.transport === 'auto') choice = cur.choice; // auto does not flip on reload
      else choice = await this.choose(l);
      if (cur !== undefined && cur.key === slotKey(l, choice.kind, this.hostFor(l, choice.kind))) keep.push(cur);
      else add.push({ l, choice, replaces: cur ?? null });
    }
    const names = new Set(cfg.listeners.map((l) => l.name));
    const removed = [...this.slots.values()].filter((s) => !names.has(s.cfg.name));

    // Bind new listeners before the swap, so a port that cannot be bound
    // fails the reload with nothing changed. A listener whose address is held
    // by one going away (replaced on the same address, or removed while
    // another takes its port) is bound right after the swap instead, once
    // the old socket stopped accepting.
    const outgoing = new Map<string, Slot>();
    for (const s of removed) outgoing.set(s.bindKey, s);
    for (const a of add) if (a.replaces !== null) outgoing.set(a.replaces.bindKey, a.replaces);
    const opened: Slot[] = [];
    const deferred: { l: ListenerConfig; choice: TransportChoice }[] = [];
    try {
      for (const a of add) {
        if (outgoing.has(`${a.choice.kind} ${this.hostFor(a.l, a.choice.kind)}:${a.l.port}`)) { deferred.push(a); continue; }
        opened.push(await this.openSlot(a.l, a.choice, gen, false));
      }
    } catch (e) {
      for (const s of opened) void this.closeSlot(s, 'reload failed');
      gen.close();
      return this.reloadFailed('cannot listen', [(e as Error).message]);
    }

    // The swap: one synchronous step, so every new request sees either the old generation or the new one.
    for (const s of keep) { s.gen = gen; s.proxy = gen.proxies.get(s.cfg.name)!; }
    const going = [...removed, ...add.flatMap((a) => (a.replaces !== null ? [a.replaces] : []))];
    for (const s of going) if (this.slots.get(s.cfg.name) === s) this.slots.delete(s.cfg.name);
    for (const s of opened) this.slots.set(s.cfg.name, s);
    this.gen = gen;
    this.log.configure(cfg.logging);
    this.drainTimeoutMs = cfg.drain.timeoutMs;
    if (JSON.stringify(cfg.admin) !== JSON.stringify(old.cfg.admin)) this.log.warn('admin listener changes take effect on restart', { running: old.cfg.admin, configured: cfg.admin });
    // Old sockets stop accepting now; their connections finish on the old servers.
    for (const s of going) void this.closeSlot(s, removed.includes(s) ? 'removed from config' : 'replaced');
    for (const a of deferred) {
      try {
        this.slots.set(a.l.name, await this.openSlot(a.l, a.choice, gen, false));
      } catch (e) {
        this.log.error('listener lost', { listener: a.l.name, error: (e as Error).message });
      }
    }
    this.retire(old);
    this.applyL4Deny(cfg);
    this.registerMetrics();
    this.reloads.ok++;
    this.log.info('reload ok', {
      generation: gen.id, previous: old.id,
      kept: keep.map((s) => s.cfg.name), added: add.filter((a) => a.replaces === null).map((a) => a.l.name),
      replaced: add.filter((a) => a.replaces !== null).map((a) => a.l.name), removed: removed.map((s) => s.cfg.name),
      inflightOnPrevious: old.inflight,
    });
    return true;
  }

  private reloadFailed(what: string, errors: string[], keeping: 'previous config' | 'new config' = 'previous config'): false {
    this.reloads.failed++;
    this.log.error('reload failed', { error: what, errors, generation: this.generation, keeping });
    return false;
  }

  /** The old generation serves its in-flight requests, then its pools, TLS contexts and access log close. */
  private retire(g: Generation): void {
    g.retired = true;
    this.closingGens.add(g);
    const finish = (why: string): void => {
      if (g.closed) return;
      clearTimeout(t);
      for (const [listener, p] of g.proxies) this.retiredStats.push({ listener, proxy: p.stats });
      g.close();
      this.closingGens.delete(g);
      this.log.info('generation closed', { generation: g.id, reason: why });
      void this.gcTransports();
    };
    const t = setTimeout(() => finish(`drain timeout with ${g.inflight} requests in flight`), this.drainTimeoutMs);
    t.unref();
    void g.idle().then(() => finish('idle'));
  }

  /**
   * After a reload: closes transports nothing uses any more (no listener,
   * draining or not, and no cluster of a live generation), so a listener
   * moved off AF_XDP detaches the XDP program without a restart.
   */
  private async gcTransports(): Promise<void> {
    // A reload in progress may have opened a transport for listeners it has not bound yet: it runs this when done.
    if (this.draining || this.reloading !== null) return;
    const used = new Set<TransportKind>();
    for (const s of this.slots.values()) used.add(s.choice.kind);
    for (const s of this.drainingSlots) used.add(s.choice.kind);
    for (const g of [this.gen, ...this.closingGens]) if (g !== null) for (const c of g.cfg.clusters) used.add(c.transport);
    for (const [kind, t] of [...this.transports]) {
      if (used.has(kind)) continue;
      this.transports.delete(kind);
      try { await t.close(); this.log.info('transport closed', { transport: kind, reason: 'unused after reload' }); } catch (e) { this.log.error('transport close failed', { transport: kind, error: (e as Error).message }); }
    }
  }

  /** SIGTERM: drain and close everything; resolves when done. */
  async drain(signal: string): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const t0 = performance.now();
    const conns = [...this.slots.values()].reduce((n, s) => n + s.server.connectionCount, 0);
    this.log.info('drain start', { signal, timeoutMs: this.drainTimeoutMs, connections: conns, inflight: this.gen?.inflight ?? 0 });
    if (this.reloading !== null) await this.reloading.catch(() => false);
    const slots = [...this.slots.values()];
    this.slots.clear();
    const closing = Promise.all([...slots.map((s) => this.closeSlot(s, 'drain')), ...this.closingSlots]);
    // Tunnels left the servers when they switched protocols, so the servers
    // do not wait for them (a kernel listener's close does): they count in
    // flight on the generation, and are waited for here within the drain
    // time; shutdownNow() closes whatever is left.
    const g = this.gen;
    if (g !== null) g.retired = true;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([closing, g?.idle()]), new Promise<void>((r) => { t = setTimeout(r, this.drainTimeoutMs); })]);
    clearTimeout(t);
    const inflight = this.gen?.inflight ?? 0;
    await this.shutdownNow();
    this.log.info('drain end', { signal, ms: Math.round(performance.now() - t0), unfinished: inflight });
  }

  /** Closes generations, transports (detaching XDP) and the admin listener without waiting for anyone. */
  async shutdownNow(): Promise<void> {
    this.draining = true;
    for (const s of this.slots.values()) void this.closeSlot(s, 'shutdown');
    this.slots.clear();
    for (const g of this.closingGens) g.close();
    this.closingGens.clear();
    this.gen?.close();
    for (const [kind, t] of this.transports) {
      try { await t.close(); this.log.info('transport closed', { transport: kind }); } catch (e) { this.log.error('transport close failed', { transport: kind, error: (e as Error).message }); }
    }
    this.transports.clear();
    if (this.admin !== null) { await this.admin.close(); this.admin = null; }
  }

  /** Signal handling for the CLI: SIGHUP reloads, SIGTERM/SIGINT drain (a second one cuts the drain short). */
  run(): Promise<number> {
    return new Promise((resolve) => {
      let stopping = false;
      const onHup = (): void => { void this.reload(); };
      const onStop = (sig: NodeJS.Signals): void => {
        if (stopping) {
          this.log.warn('second signal: closing now', { signal: sig });
          void this.shutdownNow().then(() => { cleanup(); resolve(1); });
          return;
        }
        stopping = true;
        void this.drain(sig).then(async () => { cleanup(); await this.log.close(); resolve(0); });
      };
      const cleanup = (): void => { process.off('SIGHUP', onHup); process.off('SIGTERM', onStop); process.off('SIGINT', onStop); };
      process.on('SIGHUP', onHup);
      process.on('SIGTERM', onStop);
      process.on('SIGINT', onStop);
    });
  }

  // ---------------------------------------------------------------- metrics

  private proxySum(listener: string, f: (s: ProxyStats) => number): number {
    let n = 0;
    for (const r of this.retiredStats) if (r.listener === listener) n += f(r.proxy);
    for (const g of [this.gen, ...this.closingGens]) {
      const p = g?.proxies.get(listener);
      if (p !== undefined && !g!.closed) n += f(p.stats);
    }
    return n;
  }

  private serverSum(listener: string, f: (s: ServerStats) => number): number {
    let n = 0;
    for (const r of this.retiredServers) if (r.listener === listener) n += f(r.stats);
    const s = this.slots.get(listener);
    if (s !== undefined && !s.closing) n += f(s.server.stats);
    return n;
  }

  /** Registers each listener's families once (values are read at scrape time and survive reloads). */
  private registerMetrics(): void {
    const r = this.registry;
    if (!this.metricsDone.has('')) {
      this.metricsDone.add('');
      r.gaugeFunc('strata_proxy_config_generation', 'Config generation serving new requests (1 at start, +1 per successful reload).', () => this.generation);
      r.counterFunc('strata_proxy_reloads_total', 'SIGHUP reloads by result.', () => this.reloads.ok, { result: 'ok' });
      r.counterFunc('strata_proxy_reloads_total', 'SIGHUP reloads by result.', () => this.reloads.failed, { result: 'failed' });
      r.gaugeFunc('strata_proxy_draining', '1 while draining after SIGTERM.', () => (this.draining ? 1 : 0));
      r.gaugeFunc('strata_proxy_inflight_requests', 'Requests in flight on every live generation.', () => {
        let n = this.gen?.inflight ?? 0;
        for (const g of this.closingGens) n += g.inflight;
        return n;
      });
    }
    for (const s of this.slots.values()) {
      const name = s.cfg.name;
      if (this.metricsDone.has(name)) continue;
      this.metricsDone.add(name);
      const L = { listener: name };
      const pc = (metric: string, help: string, f: (x: ProxyStats) => number): void => { r.counterFunc(metric, help, () => this.proxySum(name, f), L); };
      pc('strata_proxy_requests_total', 'Requests the proxy handled.', (x) => x.requests);
      pc('strata_proxy_denied_total', 'Requests denied by L7 policy (403).', (x) => x.denied);
      pc('strata_proxy_no_route_total', 'Requests no route matched (404).', (x) => x.noRoute);
      pc('strata_proxy_redirects_total', 'Requests answered with a redirect.', (x) => x.redirects);
      pc('strata_proxy_retries_total', 'Upstream retries.', (x) => x.retries);
      pc('strata_proxy_mirrored_total', 'Requests mirrored.', (x) => x.mirrored);
      pc('strata_proxy_tunnels_opened_total', 'Upgrade tunnels opened (101 from the upstream).', (x) => x.tunnels.opened);
      pc('strata_proxy_tunnels_closed_total', 'Upgrade tunnels closed.', (x) => x.tunnels.closed);
      pc('strata_proxy_tunnel_idle_timeouts_total', 'Upgrade tunnels closed by the idle timeout.', (x) => x.tunnels.idleTimeouts);
      r.gaugeFunc('strata_proxy_tunnels_active', 'Upgrade tunnels open now.', () => this.proxySum(name, (x) => x.tunnels.active), L);
      r.counterFunc('strata_proxy_tunnel_bytes_total', 'Bytes carried by upgrade tunnels, by direction.', () => this.proxySum(name, (x) => x.tunnels.bytesToUpstream), { ...L, direction: 'to_upstream' });
      r.counterFunc('strata_proxy_tunnel_bytes_total', 'Bytes carried by upgrade tunnels, by direction.', () => this.proxySum(name, (x) => x.tunnels.bytesToClient), { ...L, direction: 'to_client' });
      r.register(new ReasonFunc('strata_proxy_failures_total', 'Proxy failures by reason.', L, () => {
        const out: Record<string, number> = {};
        const add = (p: ProxyStats): void => { for (const [k, v] of Object.entries(p.failures)) out[k] = (out[k] ?? 0) + v; };
        for (const x of this.retiredStats) if (x.listener === name) add(x.proxy);
        for (const g of [this.gen, ...this.closingGens]) { const p = g?.proxies.get(name); if (p !== undefined && !g!.closed) add(p.stats); }
        return out;
      }));
      const sc = (metric: string, help: string, f: (x: ServerStats) => number): void => { r.counterFunc(metric, help, () => this.serverSum(name, f), L); };
      sc('strata_http_server_connections_total', 'Connections accepted.', (x) => x.connections);
      sc('strata_http_server_rejected_connections_total', 'Connections refused at maxConnections.', (x) => x.rejectedConnections);
      sc('strata_http_server_requests_total', 'Requests parsed.', (x) => x.requests);
      sc('strata_http_server_header_timeouts_total', 'Connections closed waiting for a request head.', (x) => x.headerTimeouts);
      sc('strata_http_server_request_timeouts_total', 'Requests timed out.', (x) => x.requestTimeouts);
      sc('strata_http_server_idle_timeouts_total', 'Keep-alive connections closed when idle.', (x) => x.idleTimeouts);
      sc('strata_http_server_handler_errors_total', 'Handler errors (500 or reset).', (x) => x.handlerErrors);
      sc('strata_http_server_upgrades_total', 'Connections handed over after an Upgrade request.', (x) => x.upgrades);
      r.register(new ReasonFunc('strata_http_server_parse_errors_total', 'Requests rejected by the parser, by reason.', L, () => {
        const out: Record<string, number> = {};
        for (const x of this.retiredServers) if (x.listener === name) for (const [k, v] of Object.entries(x.stats.parseErrors)) out[k] = (out[k] ?? 0) + v;
        const s2 = this.slots.get(name);
        if (s2 !== undefined && !s2.closing) for (const [k, v] of Object.entries(s2.server.stats.parseErrors)) out[k] = (out[k] ?? 0) + v;
        return out;
      }));
      r.gaugeFunc('strata_http_server_open_connections', 'Open client connections.', () => this.slots.get(name)?.server.connectionCount ?? 0, L);
    }
  }
}

/** A counter family whose reasons are only known at scrape time (e.g. proxy failure kinds). */
class ReasonFunc implements Metric {
  readonly type = 'counter' as const;
  constructor(readonly name: string, readonly help: string, private readonly labels: Record<string, string>, private readonly read: () => Record<string, number>) {}
  render(out: string[]): void {
    const base = Object.entries(this.labels).map(([k, v]) => `${k}="${esc(v)}"`);
    for (const [reason, n] of Object.entries(this.read())) out.push(`${this.name}{${[...base, `reason="${esc(reason)}"`].join(',')}} ${n}`);
  }
}

const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
function signalListeners(): Map<string, Function[]> {
  return new Map(SIGNALS.map((s) => [s, process.listeners(s)]));
}
function removeNewSignalListeners(before: Map<string, Function[]>): void {
  for (const s of SIGNALS) {
    const had = before.get(s)!;
    for (const f of process.listeners(s)) if (!had.includes(f)) process.off(s, f as (...a: unknown[]) => void);
  }
}

/** Access and verdict log: JSON lines, batched per event-loop turn. */
function accessLog(cfg: { enabled: boolean; path: string }, query: QueryMode): AccessLog | null {
  if (!cfg.enabled) return null;
  const out: NodeJS.WritableStream | WriteStream = cfg.path === 'stdout' ? process.stdout : cfg.path === 'stderr' ? process.stderr : createWriteStream(cfg.path, { flags: 'a' });
  let batch: string[] = [];
  let scheduled = false;
  let closed = false;
  const flush = (): void => { scheduled = false; if (batch.length > 0) { out.write(batch.join('')); batch = []; } };
  return {
    write(o: AccessLine) {
      if (closed) return;
      // Request targets enter the log here, query values redacted unless logging.showQueryStrings (src/flows/redact.ts).
      if (o.url !== undefined) o.url = targetFor(o.url, query);
      if (o.path !== undefined) o.path = targetFor(o.path, query);
      batch.push(`${JSON.stringify({ time: new Date().toISOString(), ...o })}\n`);
      if (!scheduled) { scheduled = true; setImmediate(flush); }
    },
    close() { flush(); closed = true; if (out !== process.stdout && out !== process.stderr) (out as WriteStream).end(); },
  };
}
