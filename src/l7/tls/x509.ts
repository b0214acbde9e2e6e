// The one place strata loads @peculiar/x509. Its CommonJS build pulls in
// tsyringe, which throws at load time unless a Reflect metadata polyfill is
// installed first, so the polyfill is imported here, before the library, and
// every other module imports x509 from this file. Node's webcrypto is set as
// the crypto provider explicitly so that key generation and signing never
// depend on globalThis.crypto being present.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509, webcrypto };
