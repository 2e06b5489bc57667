/**
 * Which targets a session may reach (web-desktop.md, weakness 4: an open proxy dials whatever
 * address a token names). The check is made on the address actually dialled: a name is
 * resolved first, every address it resolves to is checked, and the dial then goes to one of
 * those checked addresses, never to the name again. A second resolution between check and
 * dial could answer differently (DNS rebinding).
 */
import dns from 'node:dns';
import net from 'node:net';
import type { Target } from './plugins.js';
import { InvalidOptionError, TargetDeniedError, TargetUnreachableError, TargetTimeoutError } from './errors.js';
import { formatTarget, isUnixTarget } from './plugins.js';
import { dialTarget, type AbortLike, type DialOptions } from './target.js';

export const ALLOW_TARGET_GRAMMAR = 'CIDR[:PORTS], e.g. 10.0.0.0/8:5900-5999, 192.168.1.7:5901, [fd00::]/8:5900,5901 or *:5900-5999';

/** Address classes denied by default in central mode (see `TargetPolicyOptions`). */
export type SpecialTargetClass = 'loopback' | 'link-local' | 'metadata';

const SPECIAL_RANGES: ReadonlyArray<{ cls: SpecialTargetClass; cidr: string }> = [
  // Cloud metadata services first: they sit inside link-local, and the more specific class is reported.
  { cls: 'metadata', cidr: '169.254.169.254/32' }, // AWS, GCP, Azure, OpenStack, Oracle
  { cls: 'metadata', cidr: 'fd00:ec2::254/128' }, // AWS over IPv6
  { cls: 'metadata', cidr: '100.100.100.200/32' }, // Alibaba Cloud
  { cls: 'loopback', cidr: '127.0.0.0/8' },
  // 0.0.0.0 and :: dial this host on Linux; ::/96 also holds ::1 and the IPv4-compatible forms.
  { cls: 'loopback', cidr: '0.0.0.0/8' },
  { cls: 'loopback', cidr: '::/96' },
  { cls: 'link-local', cidr: '169.254.0.0/16' },
  { cls: 'link-local', cidr: 'fe80::/10' },
];

const CLASS_TEXT: Record<SpecialTargetClass, string> = {
  loopback: 'a loopback address',
  'link-local': 'a link-local address',
  metadata: 'a cloud metadata address',
};

/** One allow-list entry: addresses and ports. */
export interface AllowRule {
  /** As written, for logs. */
  readonly text: string;
  readonly addresses: net.BlockList;
  /** Inclusive port ranges; empty = every port. */
  readonly ports: ReadonlyArray<readonly [number, number]>;
}

export interface TargetPolicyOptions {
  /** `CIDR[:PORTS]` entries. When given, every other address and port is denied. */
  allow?: readonly string[];
  /** Loopback addresses (127/8, ::1, 0.0.0.0, ::; with an allow-list they must match an entry too) and unix socket targets. */
  allowLoopback: boolean;
  /** 169.254/16 and fe80::/10 (cloud metadata excepted). */
  allowLinkLocal: boolean;
  /** 169.254.169.254, fd00:ec2::254, 100.100.100.200. */
  allowMetadata: boolean;
}

/** A refused target. The client sees only "target not allowed"; `detail` (for the log) says why. */
export class TargetPolicyError extends TargetDeniedError {
  readonly detail: string;

  constructor(detail: string) {
    super('target not allowed');
    this.detail = detail;
  }
}

/** Parse one `CIDR[:PORTS]` entry; throws an `InvalidOptionError` naming it and the grammar. */
export function parseAllowRule(text: string): AllowRule {
  const fail = (why: string): InvalidOptionError => new InvalidOptionError(`invalid allowTargets entry "${text}": ${why}; expected ${ALLOW_TARGET_GRAMMAR}`);
  const t = text.trim();
  let addr: string;
  let portsText: string | undefined;
  if (t.startsWith('[')) {
    // [v6]/len:ports, [v6/len]:ports, [v6]:ports
    const end = t.indexOf(']');
    if (end < 0) throw fail('missing "]"');
    addr = t.slice(1, end);
    const rest = t.slice(end + 1);
    const m = /^(\/\d+)?(?::(.+))?$/.exec(rest);
    if (!m) throw fail(`unexpected "${rest}" after "]"`);
    if (m[1]) addr += m[1];
    portsText = m[2];
  } else if ((t.match(/:/g) ?? []).length > 1) {
    addr = t; // bare IPv6: no ports (write [v6]/len:PORTS for those)
  } else {
    const colon = t.indexOf(':');
    addr = colon < 0 ? t : t.slice(0, colon);
    portsText = colon < 0 ? undefined : t.slice(colon + 1);
  }
  const addresses = new net.BlockList();
  if (addr === '*') {
    addresses.addSubnet('0.0.0.0', 0, 'ipv4');
    addresses.addSubnet('::', 0, 'ipv6');
  } else {
    const slash = addr.indexOf('/');
    const ip = slash < 0 ? addr : addr.slice(0, slash);
    const family = net.isIP(ip);
    if (family === 0) throw fail(`"${ip}" is not an IP address (names are not allowed: the check is on addresses)`);
    const max = family === 4 ? 32 : 128;
    const prefixText = slash < 0 ? String(max) : addr.slice(slash + 1);
    const prefix = Number(prefixText);
    if (!/^\d+$/.test(prefixText) || prefix > max) throw fail(`prefix length "${prefixText}" is not 0 to ${max}`);
    addresses.addSubnet(ip, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return { text: t, addresses, ports: portsText === undefined ? [] : parsePorts(portsText, fail) };
}

function parsePorts(text: string, fail: (why: string) => InvalidOptionError): Array<[number, number]> {
  if (text === '*') return [];
  const out: Array<[number, number]> = [];
  for (const part of text.split(',')) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part.trim());
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || lo < 1 || hi > 65535 || lo > hi) throw fail(`ports "${part}" are not N or N-M within 1 to 65535`);
    out.push([lo, hi]);
  }
  return out;
}

/** An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it reaches. */
export function unmapAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return m[1]!;
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hex) {
    const a = parseInt(hex[1]!, 16);
    const b = parseInt(hex[2]!, 16);
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  return address;
}

/**
 * The target policy, built once at startup. `check` resolves a TCP target's host and returns
 * the addresses it may dial; `dial` connects to the first of them that answers.
 */
export class TargetPolicy {
  private readonly rules: AllowRule[] | undefined;
  private readonly special = new Map<SpecialTargetClass, net.BlockList>();

  constructor(readonly options: TargetPolicyOptions) {
    this.rules = options.allow?.map(parseAllowRule);
    for (const { cls, cidr } of SPECIAL_RANGES) {
      let list = this.special.get(cls);
      if (!list) this.special.set(cls, (list = new net.BlockList()));
      const [ip, len] = cidr.split('/') as [string, string];
      list.addSubnet(ip, Number(len), net.isIP(ip) === 4 ? 'ipv4' : 'ipv6');
    }
  }

  /** Why `address:port` is refused, or undefined when it is allowed. `address` must be an IP. */
  refusal(address: string, port: number): string | undefined {
    const ip = unmapAddress(address);
    const family = net.isIP(ip) === 4 ? 'ipv4' : 'ipv6';
    const where = family === 'ipv6' ? `[${ip}]:${port}` : `${ip}:${port}`;
    const cls = this.classOf(ip, family);
    if (cls === 'metadata' && !this.options.allowMetadata) return `${where} is ${CLASS_TEXT[cls]} (allowMetadataTargets permits it)`;
    if (cls === 'link-local' && !this.options.allowLinkLocal) return `${where} is ${CLASS_TEXT[cls]} (allowLinkLocalTargets or --allow-link-local-targets permits it)`;
    if (cls === 'loopback' && !this.options.allowLoopback) return `${where} is ${CLASS_TEXT[cls]} (allowLoopbackTargets or --allow-loopback-targets permits it)`;
    if (this.rules && !this.rules.some((r) => r.addresses.check(ip, family) && portAllowed(r, port))) {
      return `${where} matches no allowTargets entry (${this.rules.map((r) => r.text).join(', ') || 'none'})`;
    }
    return undefined;
  }

  /**
   * Resolve and check a target. A unix socket target is allowed exactly when loopback
   * addresses are (it reaches this host; no CIDR can name it). A name is resolved
   * once; if ANY of its addresses is refused, the target is (a name that also points at the
   * metadata service is not one to trust). Returns the checked addresses, in resolver order.
   */
  async check(target: Target, timeoutMs: number, signal?: AbortLike): Promise<string[]> {
    if (isUnixTarget(target)) {
      if (!this.options.allowLoopback) throw new TargetPolicyError(`${formatTarget(target)} is a unix socket, which counts as loopback (allowLoopbackTargets or --allow-loopback-targets permits it)`);
      return [];
    }
    const addresses = net.isIP(target.host) ? [target.host] : await resolveAll(target.host, timeoutMs, signal);
    for (const a of addresses) {
      const why = this.refusal(a, target.port);
      if (why) throw new TargetPolicyError(a === target.host ? why : `${formatTarget(target)} resolves to ${why}`);
    }
    return addresses;
  }

  private classOf(ip: string, family: 'ipv4' | 'ipv6'): SpecialTargetClass | undefined {
    for (const cls of ['metadata', 'loopback', 'link-local'] as const) {
      if (this.special.get(cls)!.check(ip, family)) return cls;
    }
    return undefined;
  }
}

function portAllowed(rule: AllowRule, port: number): boolean {
  return rule.ports.length === 0 || rule.ports.some(([lo, hi]) => port >= lo && port <= hi);
}

async function resolveAll(host: string, timeoutMs: number, signal?: AbortLike): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TargetTimeoutError(`resolving ${host} took longer than ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const found = await Promise.race([dns.promises.lookup(host, { all: true, verbatim: true }), timeout]);
    if (signal?.aborted) throw new TargetUnreachableError('client went away while connecting');
    if (found.length === 0) throw new TargetUnreachableError(`cannot resolve ${host}`);
    return found.map((f) => f.address);
  } catch (err) {
    if (err instanceof TargetTimeoutError || err instanceof TargetUnreachableError) throw err;
    throw new TargetUnreachableError(`cannot resolve ${host}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Dial the checked addresses of `target` in order until one accepts, within `timeoutMs` in
 * all. The name stays the TLS server name, so `--ssl-target` still verifies the certificate
 * against it.
 */
export async function dialChecked(
  target: Target,
  addresses: string[],
  opts: DialOptions,
): Promise<net.Socket> {
  if (isUnixTarget(target) || addresses.length === 0) return dialTarget(target, opts);
  const deadline = Date.now() + opts.timeoutMs;
  const named = !net.isIP(target.host);
  const tls = opts.tls && named && opts.tls.servername === undefined ? { ...opts.tls, servername: target.host } : opts.tls;
  let last: unknown;
  for (const address of addresses) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      return await dialTarget({ ...target, host: address }, { ...opts, tls, timeoutMs: left });
    } catch (err) {
      last = err;
      if (opts.signal?.aborted) throw err;
    }
  }
  throw last ?? new TargetTimeoutError(`${formatTarget(target)} did not accept within ${opts.timeoutMs} ms`);
}
