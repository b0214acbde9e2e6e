// wire/: the packet formats, one file per header.
//
// The contract every module here keeps (smoltcp's): a packet is a byte range
// buf[off, off+len) of some frame, never an object. Each header has ONE
// check function (ethHeaderLen, arpCheck, ipv4Check, ipv6Check/ipv6Walk,
// icmpCheck, udpCheck) that validates lengths (and checksums where the
// header has one) and returns WIRE_OK or the DROP reason (stats.ts). Once a
// check passes, no accessor can fail or read out of bounds: each accessor is
// one line over a field-offset table. Accessors allocate nothing; the
// *Parse() functions build plain objects for tests and control paths only.
// Emit functions write a header in place into a frame and return its length.
//
// Addresses are host-order unsigned 32-bit numbers (registration.ts).
export * from './checksum.js';
export * from './ethernet.js';
export * from './arp.js';
export * from './ipv4.js';
export * from './ipv6.js';
export * from './icmp.js';
export * from './udp.js';
