/**
 * `--help`, laid out as optparse's IndentedHelpFormatter lays out websockify's, from the
 * flag table: every flag in `FLAGS` is listed, websockify's first, then tsockify's.
 */
import { FLAGS, USAGE_LINES, type FlagGroup, type FlagSpec } from './flags.js';

const GROUP_TITLES: Record<FlagGroup, string> = {
  websockify: 'Options',
  tsockify: 'tsockify options (not in websockify)',
};

/** Paragraphs after the option list, wrapped to the terminal like the option help. */
const NOTES: readonly string[] = [
  'Listening: without source_addr tsockify listens on every IPv4 and IPv6 address. With systemd socket ' +
    'activation (LISTEN_FDS/LISTEN_PID) it uses the inherited socket (fd 3) and source_port may be omitted; ' +
    '--inetd takes the listening socket from fd 0.',
  "Wrap mode: '[source_addr:]source_port -- COMMAND...' runs COMMAND and proxies to it. Without --wrap-target, " +
    'tsockify picks a free port on 127.0.0.1 and tells COMMAND through $TSOCKIFY_TARGET_HOST and ' +
    "$TSOCKIFY_TARGET_PORT; when websockify's rebind.so is found ($TSOCKIFY_REBIND_SO, or " +
    '/usr/lib/websockify/rebind.so) it is preloaded too, so a COMMAND that binds source_port is moved to that ' +
    "port as with websockify. With --wrap-mode=exit tsockify exits with COMMAND's exit status; respawn waits " +
    'when COMMAND was started 3 times within 10 seconds.',
  '-D/--daemon starts a detached copy of tsockify (stdout and stderr go to --log-file, or /dev/null) and ' +
    'returns once it is listening, or with its startup error. SIGTERM and SIGINT close sessions (1001) and ' +
    'exit 0; SIGHUP re-opens --log-file (for logrotate).',
  '--workers N makes the tsockify process a primary that forks N worker processes sharing the listening ' +
    'port; signal the primary (it passes SIGTERM and SIGHUP on, and restarts a worker that dies). It cannot be ' +
    'combined with --run-once, --timeout, --idle-timeout, --inetd, socket activation, wrap mode or one-time ' +
    'tokens kept in memory.',
  'Logs go to stderr: human-readable on a terminal, JSON lines otherwise (--log-format). Tokens, passwords, ' +
    'cookies and Authorization headers are never logged.',
];

/** `-v, --verbose` or `--record=FILE`, as optparse spells an option in help. */
export function optionStrings(flag: FlagSpec): string {
  const meta = flag.type === 'boolean' ? '' : (flag.metavar ?? flag.name.toUpperCase().replace(/-/g, '_'));
  const shorts = (flag.short ?? []).map((s) => (meta ? `-${s} ${meta}` : `-${s}`));
  const longs = [flag.name, ...(flag.aliases ?? [])].map((l) => (meta ? `--${l}=${meta}` : `--${l}`));
  return [...shorts, ...longs].join(', ');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

export function usageText(prog = 'tsockify'): string {
  return `Usage: \n${USAGE_LINES.map((u) => `    ${prog} ${u}`).join('\n')}\n`;
}

export function helpText(columns = Number(process.env.COLUMNS) || 80): string {
  const width = Math.max(columns - 2, 40);
  const helpPosition = 24;
  const out: string[] = [usageText()];
  for (const group of Object.keys(GROUP_TITLES) as FlagGroup[]) {
    out.push(`${GROUP_TITLES[group]}:`);
    for (const flag of FLAGS.filter((f) => f.group === group)) {
      const opts = `  ${optionStrings(flag)}`;
      const helpLines = wrap(flag.help, width - helpPosition);
      if (opts.length > helpPosition - 2) {
        out.push(opts);
      } else {
        out.push(`${opts.padEnd(helpPosition)}${helpLines.shift() ?? ''}`.trimEnd());
      }
      for (const l of helpLines) out.push(`${' '.repeat(helpPosition)}${l}`);
    }
    out.push('');
  }
  out.push('Notes:');
  for (const note of NOTES) out.push(...wrap(note, width - 2).map((l) => `  ${l}`), '');
  return out.join('\n');
}
