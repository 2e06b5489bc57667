import type { Logger, Target } from '@tsockify/core';
import { parseTargetText } from './target-text.js';

/**
 * Parse websockify's token file format into a token → target table.
 *
 * Each line is stripped; empty lines and lines starting with `#` are skipped. A line is
 * `token: target`, split on a colon followed by ONE whitespace character, which must occur
 * exactly once (`re.split(':\s', line)` in websockify). The token is kept as written; the
 * target is trimmed and parsed by `parseTargetText` (`host:port` split on its last colon,
 * `[v6]:port`, or `unix_socket:/path`). A line that fails logs
 * `Syntax error in <file> on line N` and is skipped; a later line wins over an earlier one.
 *
 * Lines are split like Python's universal newlines (`\n`, `\r\n`, `\r`).
 */
export function parseTokenFile(text: string, file: string, log: Logger): Map<string, Target> {
  const table = new Map<string, Target>();
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line.length === 0 || line.startsWith('#')) continue;
    const parts = line.split(/:\s/);
    let target: Target | undefined;
    if (parts.length === 2) {
      try {
        target = parseTargetText(parts[1]!);
      } catch {
        target = undefined;
      }
    }
    if (target === undefined) {
      // The line itself may hold a token: log where it is, never what it says.
      log.warn({ file, line: i + 1 }, `Syntax error in ${file} on line ${i + 1}`);
      continue;
    }
    table.set(parts[0]!, target);
  }
  return table;
}
