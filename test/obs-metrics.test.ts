// The metrics primitives and the Prometheus exposition, checked by a real
// parser (parse-prometheus-text-format, a port of the Python client's parser).
import { describe, it, expect } from 'vitest';
import dc from 'node:diagnostics_channel';
// @ts-expect-error the package ships no type declarations
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Registry, Histogram, logLinearBuckets, escapeLabelValue, formatValue } from '../src/obs/metrics.js';
import { EventPublisher } from '../src/obs/events.js';
import { InvalidArgumentError } from '../src/util/errors.js';

interface ParsedFamily { name: string; help: string; type: string; metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; sum?: string; count?: string }[] }
const parse = (s: string): ParsedFamily[] => parsePrometheusTextFormat(s) as ParsedFamily[];

describe('log-linear buckets and histogram', () => {
  it('builds exact decimal bounds', () => {
    const b = logLinearBuckets(-1, 0, [1, 3]);
    expect(Array.from(b)).toEqual([0.1, 0.3, 1, 3, 10]);
  });
  it('records into (prev, le] buckets with sum and count', () => {
    const h = new Histogram(Float64Array.from([1, 2, 5]));
    for (const v of [0, 1, 1.5, 2, 4.9, 5, 7, 100]) h.record(v);
    expect(Array.from(h.counts)).toEqual([2, 2, 2, 2]);
    expect(h.count).toBe(8);
    expect(h.sum).toBeCloseTo(121.4);
  });
  it('rejects non-increasing bounds', () => {
    expect(() => new Histogram(Float64Array.from([1, 1]))).toThrow(InvalidArgumentError);
  });
});

describe('Registry.render', () => {
  it('renders counters, gauges, reasons, func metrics and histograms that a parser reads back', () => {
    const r = new Registry();
    const req = r.counter('strata_http_requests_total', 'HTTP requests.\nBy "method" and path \\ code.', ['method', 'path']);
    req.labels('GET', '/a"b\\c\nd').inc(3);
    req.labels('POST', '/').inc();
    const g = r.gauge('strata_conntrack_entries', 'Entries in the table.');
    g.labels().set(42);
    const drops = r.reasons('strata_ipv4_drops_total', 'Dropped IPv4 packets by reason.', ['bad_checksum', 'no_route'] as const, 'reason', { iface: 's0' });
    drops.inc(0, 5);
    drops.inc(1);
    r.gaugeFunc('strata_up', 'Always one.', () => 1);
    r.counterFunc('strata_rx_packets_total', 'Packets received.', () => 7, { link: 'afxdp' });
    r.counterFunc('strata_rx_packets_total', 'Packets received.', () => 9, { link: 'tap' });
    const lat = r.histogram('strata_request_seconds', 'Request latency.', logLinearBuckets(-3, -1, [1, 5]), ['route']);
    const h = lat.labels('api');
    h.record(0.0004); h.record(0.003); h.record(0.2); h.record(3);
    r.gaugeFunc('strata_weird', 'Infinite.', () => Infinity);
    const plain = r.histogram('strata_rtt_seconds', 'RTT.', logLinearBuckets(-2, -2, [1, 2])).labels();
    plain.record(0.015); plain.record(0.5);

    const text = r.render();
    const fams = parse(text);
    const by = (n: string): ParsedFamily => { const f = fams.find((x) => x.name === n); if (!f) throw new Error(`missing ${n}`); return f; };

    const reqF = by('strata_http_requests_total');
    expect(reqF.type).toBe('COUNTER');
    expect(reqF.help).toBe('HTTP requests.\nBy "method" and path \\ code.');
    const get = reqF.metrics.find((m) => m.labels?.method === 'GET')!;
    expect(get.labels!.path).toBe('/a"b\\c\nd');
    expect(Number(get.value)).toBe(3);

    expect(by('strata_conntrack_entries').type).toBe('GAUGE');
    expect(Number(by('strata_conntrack_entries').metrics[0]!.value)).toBe(42);

    const d = by('strata_ipv4_drops_total').metrics;
    expect(d.map((m) => [m.labels!.iface, m.labels!.reason, Number(m.value)])).toEqual([['s0', 'bad_checksum', 5], ['s0', 'no_route', 1]]);

    // Two FuncMetrics of one name share a single HELP/TYPE header.
    expect(text.match(/# TYPE strata_rx_packets_total/g)!.length).toBe(1);
    expect(by('strata_rx_packets_total').metrics.map((m) => [m.labels!.link, Number(m.value)])).toEqual([['afxdp', 7], ['tap', 9]]);

    const hf = by('strata_request_seconds');
    expect(hf.type).toBe('HISTOGRAM');
    const hm = hf.metrics[0]!;
    // The parser (like prom2json) flattens a labelled histogram to its buckets
    // and drops the labelled _sum/_count, so those are checked on the unlabelled one below.
    // cumulative: le 0.001 → 1, 0.005 → 2, 0.01 → 2, 0.05 → 2, 0.1 → 2, 0.5 → 3, 1 → 3, +Inf → 4
    expect(Object.fromEntries(Object.entries(hm.buckets!).map(([k, v]) => [k, Number(v)]))).toEqual({
      '0.001': 1, '0.005': 2, '0.01': 2, '0.05': 2, '0.1': 2, '0.5': 3, '1': 3, '+Inf': 4,
    });
    expect(text).toContain('strata_request_seconds_sum{route="api"} 3.2034');
    expect(text).toContain('strata_request_seconds_count{route="api"} 4');
    const pm = by('strata_rtt_seconds').metrics[0]!;
    expect([Number(pm.count), Number(pm.sum)]).toEqual([2, 0.515]);
    expect(pm.buckets).toEqual({ '0.01': '0', '0.02': '1', '0.1': '1', '+Inf': '2' });
    expect(by('strata_weird').metrics[0]!.value).toBe('+Inf');
  });

  it('checks names at registration and refuses a type clash', () => {
    const r = new Registry();
    expect(() => r.counter('1bad', 'x')).toThrow(InvalidArgumentError);
    expect(() => r.counter('ok_total', 'x', ['__reserved'])).toThrow(InvalidArgumentError);
    expect(() => r.counter('ok_total', 'x', ['le'])).toThrow(InvalidArgumentError);
    expect(() => r.counter('ok_total', 'x', ['a', 'a'])).toThrow(InvalidArgumentError);
    r.counter('same', 'x');
    expect(() => r.gauge('same', 'x')).toThrow(InvalidArgumentError);
    const f = r.counter('lbl_total', 'x', ['a']);
    expect(() => f.labels()).toThrow(InvalidArgumentError);
    expect(f.labels('v')).toBe(f.labels('v'));
  });

  it('formats values and escapes label values', () => {
    expect(formatValue(-Infinity)).toBe('-Inf');
    expect(formatValue(NaN)).toBe('NaN');
    expect(formatValue(1e-7)).toBe('1e-7');
    expect(escapeLabelValue('a\\"\n')).toBe('a\\\\\\"\\n');
  });
});

describe('EventPublisher', () => {
  it('does not build events without subscribers, and delivers them with one', () => {
    const p = new EventPublisher<{ id: number }>('strata:test:obs-event');
    let built = 0;
    const build = (id: number): { id: number } => { built++; return { id }; };
    p.publish1(build, 1);
    expect(built).toBe(0);
    expect(p.active).toBe(false);
    const got: number[] = [];
    const fn = (e: { id: number }): void => { got.push(e.id); };
    p.subscribe(fn);
    expect(p.active).toBe(true);
    expect(dc.hasSubscribers('strata:test:obs-event')).toBe(true);
    p.publish1(build, 2);
    p.publish2((a: number, b: number) => ({ id: a + b }), 3, 4);
    expect(p.unsubscribe(fn)).toBe(true);
    p.publish1(build, 5);
    expect(got).toEqual([2, 7]);
    expect(built).toBe(1);
  });
});
