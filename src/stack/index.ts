// The L2-L4 stack's public surface.
export { Stack, runStack, type StackOptions, type StackAddress, type StackDriver, type StackCore } from './iface.js';
export { Sim, SimStalledError, type SimOptions } from './sim.js';
export { StackStats, DROP, DROP_NAMES, stackDropEvents, registerStackMetrics, type DropReason, type StackStatsSnapshot, type StackDropEvent } from './stats.js';
export { ArpCache, NUD, type ArpOptions, type ArpEntryInfo } from './arp.js';
export { Ipv4, type ConntrackHook, type Ipv4Options, type SendOptions } from './ipv4.js';
export { Reassembler, type ReassemblyOptions } from './ipv4-reasm.js';
export { Icmp, type IcmpOptions, type EchoReplyHandler } from './icmp.js';
export { UdpLayer, UdpSocket, UdpSocketError, UDP_MAX_PAYLOAD, EPHEMERAL_LOW, EPHEMERAL_HIGH, type RemoteInfo, type UdpReceiveHandler } from './udp.js';
export { RouteTable, prefixMask, type Route } from './route.js';
export { TimerWheel, Timer } from './timers.js';
export * from './registration.js';
