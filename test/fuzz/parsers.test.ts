/**
 * Property-based tests (fast-check) of the core's small parsers: subprotocol lists, cookies,
 * Host headers, host:port targets, the `--web` request-target parser and record escaping.
 * Each parser either returns a well-formed value or throws its typed error, never anything
 * else, and round-trips what it is documented to accept.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import vm from 'node:vm';
import fc from 'fast-check';
import { InvalidOptionError, SubprotocolError, encodeRecordFrame, parseHostPort } from '../../packages/core/src/index.js';
import { chooseSubprotocol, hostWithoutPort, parseCookies } from '../../packages/core/src/upgrade.js';
import { parseTarget } from '../../packages/core/src/web.js';

const RUNS = { numRuns: 500 };
/** Optional whitespace as HTTP allows it around list items (OWS: spaces and tabs). */
const ows = fc.stringMatching(/^[ \t]{0,3}$/);
/** RFC 7230 token characters: what a subprotocol, cookie or header name may be made of. */
const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
const port = fc.integer({ min: 1, max: 65535 });
const hostname = fc.domain();
const ipv6 = fc.ipV6();

describe('fuzz: chooseSubprotocol', () => {
  it('throws nothing but SubprotocolError, whatever the header', () => {
    fc.assert(fc.property(fc.option(fc.string({ unit: 'binary', maxLength: 80 }), { nil: undefined }), (h) => {
      try {
        const r = chooseSubprotocol(h);
        expect(r === undefined || r === 'binary').to.equal(true);
      } catch (err) {
        expect(err).to.be.instanceOf(SubprotocolError);
      }
    }), RUNS);
  });

  it('answers binary when it is offered anywhere in the list, whatever the spacing (beats websockify)', () => {
    fc.assert(fc.property(fc.array(token, { maxLength: 5 }), fc.array(token, { maxLength: 5 }), ows, ows, (before, after, l, r) => {
      const items = [...before, `${l}binary${r}`, ...after];
      expect(chooseSubprotocol(items.join(`,${l}`))).to.equal('binary');
    }), RUNS);
  });

  it('refuses a non-empty list without binary, and takes an empty one as no offer', () => {
    fc.assert(fc.property(fc.array(token.filter((t) => t !== 'binary'), { maxLength: 5 }), ows, (items, sp) => {
      const header = items.join(`,${sp}`);
      if (items.length === 0) expect(chooseSubprotocol(header)).to.equal(undefined);
      else expect(() => chooseSubprotocol(header)).to.throw(SubprotocolError);
    }), RUNS);
  });

  it('treats subprotocol names as case-sensitive (RFC 6455 4.1): BINARY is not binary', () => {
    expect(() => chooseSubprotocol('BINARY')).to.throw(SubprotocolError);
  });
});

describe('fuzz: parseCookies', () => {
  it('never throws and returns only own, non-empty, trimmed names', () => {
    fc.assert(fc.property(fc.option(fc.string({ unit: 'binary', maxLength: 120 }), { nil: undefined }), (h) => {
      const out = parseCookies(h);
      for (const [k, v] of Object.entries(out)) {
        expect(k.length).to.be.above(0);
        expect(k).to.equal(k.trim());
        expect(v).to.be.a('string');
      }
    }), RUNS);
  });

  it('round-trips percent-encoded values, first occurrence wins', () => {
    // Names that are not Object.prototype members: those have their own regression test below.
    const name = token.filter((n) => !(n in Object.prototype));
    fc.assert(fc.property(fc.uniqueArray(fc.tuple(name, fc.string({ maxLength: 30 })), { selector: (p) => p[0], maxLength: 6 }), fc.string({ maxLength: 10 }), (pairs, dup) => {
      const parts = pairs.map(([n, v]) => `${n}=${encodeURIComponent(v)}`);
      if (pairs.length > 0) parts.push(`${pairs[0]![0]}=${encodeURIComponent(dup)}`);
      const out = parseCookies(parts.join('; '));
      for (const [n, v] of pairs) expect(out[n]).to.equal(v);
    }), RUNS);
  });

  it('keeps a value with broken percent-encoding as written instead of throwing', () => {
    expect(parseCookies('token=%E0%A4%A')).to.deep.equal({ token: '%E0%A4%A' });
  });

  // Regression: parseCookies built a plain object and tested `name in out`, so a cookie named
  // like an Object.prototype member (`constructor`, `toString`, `__proto__`, `hasOwnProperty`)
  // was dropped, and reading that name gave a function (see test/security/cookie-names.test.ts
  // for the crash that followed). It now builds on Object.create(null) and tests Object.hasOwn.
  it('keeps cookies named like Object.prototype members as own string values (regression: prototype names dropped)', () => {
    for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf']) {
      const out = parseCookies(`${name}=abc; token=t`);
      expect(Object.prototype.hasOwnProperty.call(out, name), `cookie ${name} is an own property`).to.equal(true);
      expect(out[name], `cookie ${name}`).to.equal('abc');
      expect(out['token']).to.equal('t');
    }
  });
});

describe('fuzz: hostWithoutPort', () => {
  it('never throws, whatever the Host header', () => {
    fc.assert(fc.property(fc.option(fc.string({ unit: 'binary', maxLength: 60 }), { nil: undefined }), (h) => {
      const r = hostWithoutPort(h);
      expect(r === undefined || typeof r === 'string').to.equal(true);
    }), RUNS);
  });
  it('strips the port from name:port and leaves a bare name alone', () => {
    fc.assert(fc.property(hostname, port, (h, p) => {
      expect(hostWithoutPort(`${h}:${p}`)).to.equal(h);
      expect(hostWithoutPort(h)).to.equal(h);
    }), RUNS);
  });
  it('unbrackets [v6]:port and [v6], and leaves an unbracketed v6 address whole', () => {
    fc.assert(fc.property(ipv6, port, (a, p) => {
      expect(hostWithoutPort(`[${a}]:${p}`)).to.equal(a);
      expect(hostWithoutPort(`[${a}]`)).to.equal(a);
      if (a.split(':').length > 2) expect(hostWithoutPort(a)).to.equal(a);
    }), RUNS);
  });
});

describe('fuzz: parseHostPort', () => {
  it('throws nothing but InvalidOptionError', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (v) => {
      try {
        const r = parseHostPort(v);
        expect(r.host.length).to.be.above(0);
        expect(Number.isInteger(r.port) && r.port >= 1 && r.port <= 65535).to.equal(true);
      } catch (err) {
        expect(err).to.be.instanceOf(InvalidOptionError);
        // The message names the value and the expected form.
        expect((err as Error).message).to.match(/^invalid target ".*": /s);
      }
    }), RUNS);
  });
  it('round-trips host:port, [v6]:port and v6addr:port (split on the last colon)', () => {
    fc.assert(fc.property(fc.oneof(hostname, fc.ipV4()), port, (h, p) => {
      expect(parseHostPort(`${h}:${p}`)).to.deep.equal({ host: h, port: p });
    }), RUNS);
    fc.assert(fc.property(ipv6, port, (a, p) => {
      expect(parseHostPort(`[${a}]:${p}`)).to.deep.equal({ host: a, port: p });
      expect(parseHostPort(`${a}:${p}`)).to.deep.equal({ host: a, port: p });
    }), RUNS);
  });
  it('refuses ports outside 1..65535 and ports that are not plain digits', () => {
    fc.assert(fc.property(hostname, fc.oneof(
      fc.integer({ min: 65536, max: 10_000_000 }).map(String),
      fc.constant('0'),
      fc.integer({ min: 1, max: 65535 }).map((n) => `+${n}`),
      fc.integer({ min: 1, max: 65535 }).map((n) => ` ${n}`),
      fc.integer({ min: 1, max: 65535 }).map((n) => `${n}.0`),
      fc.integer({ min: 1, max: 65535 }).map((n) => `0x${n.toString(16)}`),
    ), (h, p) => {
      expect(() => parseHostPort(`${h}:${p}`)).to.throw(InvalidOptionError);
    }), RUNS);
  });
});

describe('fuzz: --web request targets (parseTarget)', () => {
  const segmentChars = fc.constantFrom('a', 'b', '.', '..', '%2e', '%2E', '%2f', '%2F', '%5c', '%00', '%252e', '\\', '%', '%zz', 'é', '%C3%A9', '~', ';', '//', '?', '#');
  const rawPath = fc.array(segmentChars, { maxLength: 10 }).map((s) => `/${s.join('/')}`);

  it('never throws, and never yields a segment that could climb or split (.., /, \\, NUL)', () => {
    fc.assert(fc.property(fc.oneof(rawPath, fc.string({ unit: 'binary', maxLength: 60 })), (url) => {
      const r = parseTarget(url);
      if (typeof r === 'number') {
        expect([400, 404]).to.include(r);
        return;
      }
      for (const seg of r.segments) {
        expect(seg).to.not.equal('..');
        expect(seg).to.not.equal('.');
        expect(seg).to.not.equal('');
        expect(seg.includes('/') || seg.includes('\\') || seg.includes('\0'), JSON.stringify(seg)).to.equal(false);
      }
    }), { numRuns: 2000 });
  });

  it('decodes each segment exactly once (%252e stays the literal name %2e)', () => {
    const name = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== '.' && s !== '..' && !/[/\\\0]/.test(s));
    fc.assert(fc.property(fc.array(name, { minLength: 1, maxLength: 4 }), (names) => {
      const once = parseTarget(`/${names.map(encodeURIComponent).join('/')}`);
      expect(typeof once === 'number' ? once : once.segments).to.deep.equal(names);
      const twice = parseTarget(`/${names.map((n) => encodeURIComponent(encodeURIComponent(n))).join('/')}`);
      expect(typeof twice === 'number' ? twice : twice.segments).to.deep.equal(names.map(encodeURIComponent));
    }), RUNS);
  });

  it('takes an absolute-form target by its path only: the host part never becomes a segment', () => {
    fc.assert(fc.property(hostname, fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 3 }), (h, segs) => {
      const r = parseTarget(`http://${h}/${segs.join('/')}`);
      expect(typeof r === 'number' ? r : r.segments).to.deep.equal(segs);
    }), RUNS);
  });
});

/** Evaluate one record line as noVNC's playback page does (a script tag) and return the bytes. */
function decodeRecordLine(line: string): { dir: string; ms: number; bytes: Buffer } {
  // `line` is `'<dir><ms><dir><escaped>',\n`: inside an array literal it must be one element.
  const arr = vm.runInNewContext(`[${line}'EOF']`) as unknown[];
  expect(arr, 'the line is exactly one string literal').to.have.length(2);
  const s = arr[0] as string;
  const m = /^([{}])(\d+)\1/.exec(s);
  if (!m) throw new Error(`bad frame head ${JSON.stringify(s.slice(0, 20))}`);
  const body = s.slice(m[0].length);
  const bytes = Buffer.alloc(body.length);
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c > 0xff) throw new Error(`char code ${c} is not a byte`);
    bytes[i] = c;
  }
  return { dir: m[1]!, ms: Number(m[2]), bytes };
}

describe('fuzz: record escaping (encodeRecordFrame)', () => {
  const dir = fc.constantFrom('{' as const, '}' as const);
  const ms = fc.integer({ min: 0, max: 2 ** 31 });
  const bytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));

  it('round-trips any bytes through the JavaScript literal noVNC evaluates, one literal per line', () => {
    fc.assert(fc.property(dir, ms, bytes, (d, t, b) => {
      const line = encodeRecordFrame(d, t, b);
      expect(line.endsWith("',\n")).to.equal(true);
      // Printable ASCII only: nothing a script tag, an editor or a log can mangle.
      expect(/^[\x20-\x7e]*$/.test(line.slice(0, -1)), JSON.stringify(line)).to.equal(true);
      expect(decodeRecordLine(line)).to.deep.equal({ dir: d, ms: t, bytes: b });
    }), { numRuns: 1000 });
  });

  it('escapes byte for byte as websockify (Python unicode_escape, then \' → \\\')', function () {
    this.timeout(20_000);
    const samples = fc.sample(bytes, { numRuns: 300, seed: 42 });
    samples.push(Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    const script = [
      'import json,sys',
      'out=[]',
      'for h in json.load(sys.stdin):',
      "    b=bytes.fromhex(h)",
      "    out.append(b.decode('latin1').encode('unicode_escape').decode('ascii').replace(\"'\", \"\\\\'\"))",
      'json.dump(out, sys.stdout)',
    ].join('\n');
    const py = JSON.parse(execFileSync('python3', ['-c', script], { input: JSON.stringify(samples.map((s) => s.toString('hex'))) }).toString()) as string[];
    samples.forEach((s, i) => {
      expect(encodeRecordFrame('{', 7, s)).to.equal(`'{7{${py[i]}',\n`);
    });
  });
});
