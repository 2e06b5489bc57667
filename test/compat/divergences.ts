/**
 * The one list of deliberate differences between tsockify and the websockify the suite runs
 * against (Debian's 0.10). Two kinds:
 *  - `beat`: websockify's behaviour is a known weakness; the contract
 *    (shared/spec/websockify-compat.md) asks tsockify to do better.
 *  - `version`: Debian's 0.10 differs from 0.13, and the contract is 0.13.
 *
 * A test that hits a divergence asserts the contract for tsockify and websockify's known
 * behaviour for websockify (marked in its title, never skipped), so the suite documents both
 * and notices if either side changes.
 */
import type { ProxyName } from './proxies.js';

export interface Divergence {
  kind: 'beat' | 'version';
  description: string;
  /** What websockify 0.10 does (asserted for websockify, and named in its test title). */
  websockify: string;
  /** What tsockify does: the contract. */
  tsockify: string;
  /** Where it is asserted, or why it is not. */
  test: string;
}

export const divergences = {
  'target-unreachable': {
    kind: 'beat',
    description: 'the target refuses the connection or cannot be reached',
    websockify: 'upgrades to 101, then closes 1011 "Failed to connect to downstream server"',
    tsockify: 'dials before upgrading and answers HTTP 502 with a short reason; no 101',
    test: 'close.test.ts > close handling',
  },
  'token-rejected': {
    kind: 'beat',
    description: 'a token plugin is configured and the token is missing, empty or unknown',
    websockify: 'closes the TCP connection without any HTTP response (the browser sees 1006)',
    tsockify: 'answers HTTP 4xx with a short reason and no 101',
    test: 'tokens.test.ts > token plugin',
  },
  'token-logged': {
    kind: 'beat',
    description: 'an unknown token is logged',
    websockify: 'logs the token itself ("Token \'...\' not found")',
    tsockify: 'logs why the request was refused, never the token',
    test: 'tokens.test.ts > token plugin',
  },
  'subprotocol-list-space': {
    kind: 'beat',
    description: 'Sec-WebSocket-Protocol list with a space after the comma, binary not first ("base64, binary")',
    websockify: 'does not trim list items, so " binary" is not "binary": answers 400',
    tsockify: 'trims list items and answers 101 with "binary"',
    test: 'handshake.test.ts > handshake',
  },
  'message-size-cap': {
    kind: 'beat',
    description: 'a client message larger than the cap (tsockify default 4 MiB)',
    websockify: 'has no limit: keeps reading the oversized message without closing (relaying 4 MiB takes it ~15 s, its reassembly is quadratic)',
    tsockify: 'closes 1009 (message too big)',
    test: 'relay.test.ts > relay',
  },
  'dual-stack': {
    kind: 'beat',
    description: 'no source host given: which addresses are bound',
    websockify: 'binds 0.0.0.0 only (IPv4)',
    tsockify: 'binds :: dual stack (IPv4 and IPv6)',
    test: 'not asserted: the suite binds 127.0.0.1 only, and checking needs a wildcard bind',
  },
  'http-method-405': {
    kind: 'version',
    description: 'POST, PUT, PATCH, DELETE or OPTIONS on the WebSocket port',
    websockify: 'answers 501 (0.10 has no handler for the method; 0.13 answers 405)',
    tsockify: 'answers 405 Method Not Allowed (the 0.13 contract)',
    test: 'handshake.test.ts > plain HTTP without --web',
  },
  'client-close-flush': {
    kind: 'version',
    description: 'client data that arrives in the same read as the client\'s close frame',
    websockify: 'drops that data: the target gets EOF without it (0.13 flushes it first)',
    tsockify: 'writes all of it to the target, then ends the target socket (the 0.13 contract)',
    test: 'close.test.ts > close handling',
  },
} as const satisfies Record<string, Divergence>;

export type DivergenceId = keyof typeof divergences;

/** Does this proxy show the divergent (non-contract) behaviour? Only websockify ever does. */
export function deviates(proxy: ProxyName, _id: DivergenceId): boolean {
  return proxy === 'websockify';
}

/**
 * The `it` title for a divergent case: the contract for tsockify; for websockify the contract
 * marked with the divergence and what websockify does instead (which is what its test asserts).
 */
export function divergentTitle(proxy: ProxyName, id: DivergenceId, contract: string): string {
  return deviates(proxy, id) ? `${contract} [divergence ${id}: websockify ${divergences[id].websockify}]` : contract;
}

/**
 * `it(...)` for a divergent case. The body receives `deviant`: true when it must assert
 * websockify's known behaviour instead of the contract.
 */
export function itDiverges(proxy: ProxyName, id: DivergenceId, contract: string,
  fn: (deviant: boolean) => Promise<void>): Mocha.Test {
  const deviant = deviates(proxy, id);
  return it(divergentTitle(proxy, id, contract), () => fn(deviant));
}
