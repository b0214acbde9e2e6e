// Flow records across layers (issue 5): the record and its builders, the bus
// that builds them only for listeners, exporters (JSON lines, CBOR
// sequence), filters, the HTTP observer, and the busiest-flows view.
export * from './record.js';
export { FlowBus, FlowBusStats, flowBus, FLOW_CHANNEL, type FlowSink } from './bus.js';
export { JsonLinesExporter, CborExporter, exporterFor, encodeCborSequence, readJsonLines, readCborSequence, type ExporterOptions } from './export.js';
export { compileFilter, FlowFilterError, type FlowFilter } from './filter.js';
export { observeHttp, FlowJoin, type HttpObserveOptions } from './http.js';
export { conntrackTop, RecordTop, topFlows, watchConntrack, type TopFlow, type TopOrder, type TopSnapshot, type TopSource, type WatchConntrackOptions } from './top.js';
export { redactTarget, targetFor, type QueryMode } from './redact.js';
export { formatFlowLine, humanBytes } from './format.js';
