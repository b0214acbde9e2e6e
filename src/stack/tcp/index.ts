// strata's TCP: the endpoint table (Tcp), connections with the callback fast
// path (TcpConnection + TcpHandler), node:net-shaped sockets (TcpServer,
// TcpSocket), congestion control, and the test/simulation harness.
export { Tcp, DEFAULT_TCP_CONFIG, TCP_DROP, TcpCounters, validateConfig, tcpStateChannel } from './tcp.js';
export type { TcpConfig, TcpDropReason, TcpOptionsInit, ConnectOptions } from './tcp.js';
export { TcpConnection } from './connection.js';
export type { TcpHandler, TcpInfo, TcpState } from './connection.js';
export { TcpListener } from './listener.js';
export { TcpSocket, TcpServer, createServer, connect } from './socket.js';
export type { TcpSocketOptions, TcpServerOptions, AddressInfo } from './socket.js';
export { TcpError } from './errors.js';
export type { TcpErrorCode } from './errors.js';
export { NewReno, Cubic, makeCongestionControl } from './congestion/index.js';
export type { CongestionControl, CcState, CongestionControlName } from './congestion/index.js';
