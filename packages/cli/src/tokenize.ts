/**
 * optparse-compatible tokenizing of argv, driven by the flag table.
 *
 * Hand-written rather than yargs: yargs disagrees with optparse on exactly the points
 * websockify users rely on. It has no unique-prefix matching (`--cer` = `--cert`), it treats
 * a value that starts with a dash as the next flag (`--key-password -x`), it accepts
 * `--no-FLAG` negations and `--flag=value` on booleans, and it camel-cases and dot-expands
 * names. The rules here are optparse's (Python 3.11 `optparse.OptionParser._process_args`):
 *
 * - `--` ends option parsing; everything after it is positional.
 * - `--name=value` and `--name value`; a value is taken as-is even when it starts with `-`.
 * - A long name may be abbreviated to any unique prefix; an exact name always wins.
 * - `-abc` is a cluster of single-letter flags; a lone `-` is a positional.
 * - Options and positionals may interleave.
 * - Values are converted (int, choice) when the option is met, so the first bad token is
 *   the one reported.
 */
import { FLAGS, WEBSOCKIFY_LONG_NAMES, findFlag, findShortFlag, type FlagSpec } from './flags.js';
import { UsageError } from './errors.js';

export type FlagValue = string | number | boolean;

export interface Tokens {
  /** Values by long flag name, for the flags given on the command line (last one wins). */
  values: Map<string, FlagValue>;
  /** Positionals before `--` (or all of them when there is no `--`). */
  positionals: string[];
  /** The arguments after `--`, or undefined when there was no `--`. */
  afterDashDash: string[] | undefined;
  /** `--help` or `--version` was met: optparse acts on it at once and ignores the rest. */
  stop?: 'help' | 'version';
}

/** The long name an abbreviation stands for, or a UsageError naming the candidates. */
export function matchLongName(typed: string): string {
  const longNames = FLAGS.flatMap((f) => [f.name, ...(f.aliases ?? [])]);
  if (longNames.includes(typed)) return typed;
  const candidates = longNames.filter((n) => n.startsWith(typed)).sort();
  // A prefix websockify resolves uniquely keeps that meaning (see WEBSOCKIFY_LONG_NAMES).
  const compat = candidates.filter((n) => WEBSOCKIFY_LONG_NAMES.has(n));
  if (compat.length === 1) return compat[0]!;
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0) {
    const guess = closestName(typed, longNames);
    throw new UsageError(
      `no such option: --${typed}`,
      `${guess ? `did you mean --${guess}? ` : ''}run 'tsockify --help' for the list of options`,
    );
  }
  throw new UsageError(
    `ambiguous option: --${typed} (${candidates.map((c) => `--${c}`).join(', ')}?)`,
    'type more of the option name',
  );
}

export function tokenize(argv: readonly string[]): Tokens {
  const values = new Map<string, FlagValue>();
  const positionals: string[] = [];
  const rest = [...argv];
  while (rest.length > 0) {
    const arg = rest.shift()!;
    if (arg === '--') {
      return { values, positionals, afterDashDash: rest };
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const typed = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      const name = matchLongName(typed);
      const flag = findFlag(name)!;
      let raw: string | undefined;
      if (flag.type === 'boolean') {
        if (eq >= 0) throw new UsageError(`--${name} option does not take a value`, `write --${name} alone`);
      } else if (eq >= 0) {
        raw = arg.slice(eq + 1);
      } else {
        if (rest.length === 0) throw missingValue(flag, `--${name}`);
        raw = rest.shift()!;
      }
      const stop = store(values, flag, `--${name}`, raw);
      if (stop) return { values, positionals, afterDashDash: undefined, stop };
    } else if (arg.startsWith('-') && arg.length > 1) {
      for (let i = 1; i < arg.length; i++) {
        const letter = arg[i]!;
        const flag = findShortFlag(letter);
        if (!flag) {
          throw new UsageError(`no such option: -${letter}`, "run 'tsockify --help' for the list of options");
        }
        let raw: string | undefined;
        if (flag.type !== 'boolean') {
          // optparse: the rest of the cluster is the value, else the next argument.
          if (i + 1 < arg.length) raw = arg.slice(i + 1);
          else if (rest.length > 0) raw = rest.shift()!;
          else throw missingValue(flag, `-${letter}`);
          i = arg.length;
        }
        const stop = store(values, flag, `-${letter}`, raw);
        if (stop) return { values, positionals, afterDashDash: undefined, stop };
      }
    } else {
      positionals.push(arg);
    }
  }
  return { values, positionals, afterDashDash: undefined };
}

function missingValue(flag: FlagSpec, spelled: string): UsageError {
  return new UsageError(`${spelled} option requires 1 argument`, `write ${spelled} ${flag.metavar ?? 'VALUE'}`);
}

function store(values: Map<string, FlagValue>, flag: FlagSpec, spelled: string, raw: string | undefined): 'help' | 'version' | undefined {
  if (flag.name === 'help' || flag.name === 'version') return flag.name;
  const value = raw === undefined ? true : convert(flag, spelled, raw);
  const prev = values.get(flag.name);
  // Repeatable flags keep every value; none of their values can hold a newline.
  values.set(flag.name, flag.repeatable && typeof prev === 'string' ? `${prev}\n${String(value)}` : value);
  return undefined;
}

/** Python's repr() of a str, as optparse quotes bad values. */
function pyRepr(s: string): string {
  return s.includes("'") && !s.includes('"') ? `"${s}"` : `'${s.replace(/'/g, "\\'")}'`;
}

/** optparse's `_parse_int`: 0x hex, 0b binary, a leading 0 means octal, else decimal. */
export function parseOptparseInt(text: string): number | undefined {
  const s = text.trim().replace(/_/g, '');
  const m = /^([+-]?)(.*)$/.exec(s)!;
  const sign = m[1] === '-' ? -1 : 1;
  const body = m[2]!;
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(body)) n = parseInt(body.slice(2), 16);
  else if (/^0b[01]*$/i.test(body)) n = body.length > 2 ? parseInt(body.slice(2), 2) : 0;
  else if (/^0[0-7]*$/.test(body)) n = parseInt(body, 8);
  else if (/^[1-9][0-9]*$/.test(body)) n = parseInt(body, 10);
  else return undefined;
  return sign * n;
}

function convert(flag: FlagSpec, spelled: string, raw: string): FlagValue {
  switch (flag.type) {
    case 'int': {
      const n = parseOptparseInt(raw);
      if (n === undefined) {
        throw new UsageError(`option ${spelled}: invalid integer value: ${pyRepr(raw)}`, `give ${flag.metavar ?? 'N'} as a whole number`);
      }
      if (n < 0) throw new UsageError(`option ${spelled}: invalid value: ${pyRepr(raw)}`, `${flag.metavar ?? 'N'} must not be negative`);
      return n;
    }
    case 'count': {
      if (raw.trim() === 'auto') return 'auto';
      const n = parseOptparseInt(raw);
      if (n === undefined) {
        throw new UsageError(`option ${spelled}: invalid integer value: ${pyRepr(raw)}`, `give ${flag.metavar ?? 'N'} as a whole number, or auto`);
      }
      if (n < 1) throw new UsageError(`option ${spelled}: invalid value: ${pyRepr(raw)}`, `${flag.metavar ?? 'N'} must be at least 1`);
      return n;
    }
    case 'seconds': {
      const n = /^\s*\d+(\.\d*)?\s*$|^\s*\.\d+\s*$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(n) || n <= 0) {
        throw new UsageError(`option ${spelled}: invalid number of seconds: ${pyRepr(raw)}`, 'give a positive number, e.g. 10 or 2.5');
      }
      return n;
    }
    case 'bytes': {
      const m = /^\s*(\d+)\s*([kmg]?)i?b?\s*$/i.exec(raw);
      const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m?.[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g'];
      const n = m ? Number(m[1]) * unit : NaN;
      if (!Number.isSafeInteger(n) || n <= 0) {
        throw new UsageError(`option ${spelled}: invalid byte count: ${pyRepr(raw)}`, 'give a positive number of bytes, e.g. 1048576 or 1m');
      }
      return n;
    }
    case 'choice': {
      if (!flag.choices!.includes(raw)) {
        throw new UsageError(
          `option ${spelled}: invalid choice: ${pyRepr(raw)} (choose from ${flag.choices!.map(pyRepr).join(', ')})`,
          `e.g. ${spelled}=${flag.choices![0]}`,
        );
      }
      return raw;
    }
    default:
      return raw;
  }
}

/** The nearest long name by edit distance, when it is close enough to be a typo. */
function closestName(typed: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of names) {
    const d = editDistance(typed, name);
    if (d < bestDistance) { best = name; bestDistance = d; }
  }
  return bestDistance <= Math.max(1, Math.floor(typed.length / 4)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
