/**
 * Property-based tests of the command-line parser: whatever argv holds, `parseArgs` returns a
 * parse result or throws its typed `UsageError` (exit code 2), never anything else; and the
 * optparse equivalences websockify users rely on hold for every flag in the table.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { parseArgs, type ParseContext, type ParseResult } from '../../packages/cli/src/args.js';
import { FLAGS, type FlagSpec } from '../../packages/cli/src/flags.js';
import { CliError, UsageError } from '../../packages/cli/src/errors.js';

const ctx: ParseContext = { env: {}, pid: 4242, cwd: '/srv', fileExists: () => false };
const RUNS = { numRuns: 1500 };

/** parseArgs, with any throw that is not a CliError turned into a failed assertion. */
function parse(argv: string[]): ParseResult | UsageError {
  try {
    return parseArgs(argv, ctx);
  } catch (err) {
    if (!(err instanceof CliError)) {
      throw new Error(`parseArgs(${JSON.stringify(argv)}) threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    }
    expect(err).to.be.instanceOf(UsageError);
    expect(err.exitCode).to.equal(2);
    return err as UsageError;
  }
}

/** The shortest prefix of `name` that no other long name starts with (or the name itself). */
function uniquePrefix(name: string): string {
  for (let n = 1; n <= name.length; n++) {
    const p = name.slice(0, n);
    const hits = FLAGS.filter((f) => f.name.startsWith(p));
    if (hits.length === 1 && hits[0]!.name === name) return p;
  }
  return name;
}

const nonStop = FLAGS.filter((f) => f.name !== 'help' && f.name !== 'version');
const valueFor = (f: FlagSpec): fc.Arbitrary<string> => {
  switch (f.type) {
    case 'int': return fc.oneof(fc.nat(100000).map(String), fc.constantFrom('0x10', '010', '0b101', '-1', 'x', ''));
    case 'seconds': return fc.oneof(fc.constantFrom('1', '2.5', '.5', '0', '-1', 'abc', 'Infinity', 'NaN', '1e3'));
    case 'bytes': return fc.constantFrom('1', '1k', '4m', '1g', '0', '-5', '1t', '99999999999999999999', 'kb');
    case 'choice': return fc.oneof(fc.constantFrom(...f.choices!), fc.string({ maxLength: 8 }));
    default: return fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('-x', '--', '=', '', 'a:b:c', '"q:u"'));
  }
};
const flagArg: fc.Arbitrary<string[]> = fc.constantFrom(...nonStop).chain((f): fc.Arbitrary<string[]> => {
  const spell: fc.Arbitrary<string> = fc.constantFrom(`--${f.name}`, `--${uniquePrefix(f.name)}`);
  if (f.type === 'boolean') {
    return fc.oneof(spell.map((s) => [s]), fc.constant<string[]>(f.short ? [`-${f.short[0]}`] : [`--${f.name}`]), spell.map((s) => [`${s}=x`]));
  }
  return fc.oneof(
    fc.tuple(spell, valueFor(f)).map(([s, v]) => [`${s}=${v}`]),
    fc.tuple(spell, valueFor(f)).map(([s, v]) => [s, v]),
    spell.map((s) => [s]), // value missing at the end, or the next token taken as the value
  );
});
const positional = fc.oneof(
  fc.integer({ min: 0, max: 70000 }).map(String),
  fc.tuple(fc.constantFrom('127.0.0.1', 'localhost', '[::1]', '::1', '', 'h'), fc.integer({ min: 0, max: 70000 })).map(([h, p]) => `${h}:${p}`),
  fc.string({ maxLength: 10 }),
  fc.constantFrom('-', '--', '-6', '-v', '-vD', '-x', '---', '--=', '--no-such', '--ver', '--s', '--log', '--token'),
);
const argvArb = fc.array(fc.oneof(flagArg, positional.map((p) => [p])), { maxLength: 8 }).map((parts) => parts.flat());

describe('fuzz: CLI argument parser (parseArgs)', () => {
  it('returns a result or throws a UsageError with exit code 2 for any argv built from the flag table', () => {
    fc.assert(fc.property(argvArb, (argv) => { parse(argv); }), RUNS);
  });

  it('throws nothing but a UsageError for arbitrary strings', () => {
    fc.assert(fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 16 }), { maxLength: 6 }), (argv) => { parse(argv); }), RUNS);
  });

  it('gives the same answer for --opt=value and --opt value', () => {
    const withValue = nonStop.filter((f) => f.type !== 'boolean');
    fc.assert(fc.property(fc.constantFrom(...withValue).chain((f) => fc.tuple(fc.constant(f), valueFor(f))), ([f, v]) => {
      const a = parse([`--${f.name}=${v}`, '6080', 'localhost:5900']);
      const b = parse([`--${f.name}`, v, '6080', 'localhost:5900']);
      if (a instanceof Error || b instanceof Error) expect(String(a)).to.equal(String(b));
      else expect(a).to.deep.equal(b);
    }), RUNS);
  });

  it('treats any unique prefix of a long option as the option itself', () => {
    fc.assert(fc.property(fc.constantFrom(...nonStop.filter((f) => f.type === 'boolean')), (f) => {
      const full = parse([`--${f.name}`, '6080', 'localhost:5900']);
      const name = f.name;
      for (let n = uniquePrefix(name).length; n <= name.length; n++) {
        const short = parse([`--${name.slice(0, n)}`, '6080', 'localhost:5900']);
        expect(String(short instanceof Error ? short : JSON.stringify(short))).to.equal(String(full instanceof Error ? full : JSON.stringify(full)));
      }
    }), { numRuns: 200 });
  });

  it('lets options and positionals interleave in any order', () => {
    const opts = fc.subarray([['--verbose'], ['--traffic'], ['--heartbeat', '5'], ['--record', '/tmp/r'], ['--file-only'], ['-6']]);
    fc.assert(fc.property(opts, fc.nat(10), fc.nat(10), (chosen, i, j) => {
      const flat = chosen.flat();
      const reference = parse([...flat, '6080', 'localhost:5900']);
      // Put the two positionals at arbitrary option boundaries, keeping their order.
      const cut1 = Math.min(i % (chosen.length + 1), chosen.length);
      const cut2 = Math.max(cut1, Math.min(j % (chosen.length + 1), chosen.length));
      const argv = [...chosen.slice(0, cut1).flat(), '6080', ...chosen.slice(cut1, cut2).flat(), 'localhost:5900', ...chosen.slice(cut2).flat()];
      expect(parse(argv)).to.deep.equal(reference);
    }), { numRuns: 300 });
  });

  it('splits source and target on the last colon and strips IPv6 brackets', () => {
    fc.assert(fc.property(fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6()), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 65535 }), (host, tport, lport) => {
      const bracket = host.includes(':') ? `[${host}]` : host;
      const r = parse([`${bracket}:${lport}`, `${bracket}:${tport}`]);
      if (r instanceof Error) throw r;
      expect(r.kind).to.equal('run');
      if (r.kind !== 'run') return;
      expect(r.options.listen).to.deep.equal({ kind: 'tcp', host, port: lport });
      expect(r.options.target).to.deep.equal({ kind: 'tcp', host, port: tport });
    }), { numRuns: 500 });
  });

  it('never repeats a secret value (--key-password, --auth-source, --token-source) in a usage error', () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9]{6,12}$/).map((s) => `S3cr3t${s}`);
    const secretFlag = fc.constantFrom('key-password', 'auth-source', 'token-source');
    fc.assert(fc.property(secret, secretFlag, argvArb, fc.boolean(), (s, flag, rest, eq) => {
      const argv = eq ? [`--${flag}=${s}`, ...rest] : [`--${flag}`, s, ...rest];
      const r = parse(argv);
      if (r instanceof Error) {
        // Only a value given where a positional was expected may be echoed (it was not given as a secret).
        if (rest.some((a) => a.includes(s))) return;
        expect(`${r.message} ${r.hint ?? ''}`).to.not.include(s);
      }
    }), RUNS);
  });
});
