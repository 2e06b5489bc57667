/**
 * The defaults that bound hostile clients are what the command says they are: an operator
 * sizing a slowloris or flood defence reads `tsockify --help`, so its numbers must be the
 * ones the server enforces.
 */
import { expect } from 'chai';
import { resolveOptions } from '../../packages/core/src/index.js';
import { helpText } from '../../packages/cli/src/help.js';

/** The help paragraph of one option, joined into one line. */
function helpFor(flag: string): string {
  const lines = helpText(200).split('\n');
  const i = lines.findIndex((l) => l.trimStart().startsWith(`--${flag}`));
  expect(i, `--${flag} in --help`).to.be.at.least(0);
  const out = [lines[i]!];
  for (let j = i + 1; j < lines.length && /^\s{6,}\S/.test(lines[j]!) && !lines[j]!.trimStart().startsWith('-'); j++) out.push(lines[j]!);
  return out.join(' ').replace(/\s+/g, ' ');
}

function defaultSeconds(flag: string): number {
  const m = /default (\d+(?:\.\d+)?)/.exec(helpFor(flag));
  expect(m, `--${flag} help states its default: ${helpFor(flag)}`).to.not.equal(null);
  return Number(m![1]);
}

describe('security: the documented limits are the enforced ones', () => {
  const core = resolveOptions({});

  // BUG: `--handshake-timeout` says "(default 10)" in --help (packages/cli/src/flags.ts) while
  // the server drops a slowloris client after headersTimeoutMs = 5000 ms (options.ts), and the
  // CLI passes nothing unless the flag is given. docs/cli.md already says 5. Fix the help text.
  it('--help states the headers (slowloris) timeout the server enforces (regression: --help said 10 s, the server uses 5 s)', () => {
    expect(defaultSeconds('handshake-timeout') * 1000).to.equal(core.headersTimeoutMs);
  });

  it('--help states the connect timeout the server enforces', () => {
    expect(defaultSeconds('connect-timeout') * 1000).to.equal(core.connectTimeoutMs);
  });

  it('--help states the plugin timeout the server enforces', () => {
    expect(defaultSeconds('plugin-timeout') * 1000).to.equal(core.pluginTimeoutMs);
  });

  it('--help states the message size cap the server enforces', () => {
    const m = /default (\d+)m\b/.exec(helpFor('max-message-size'));
    expect(m, helpFor('max-message-size')).to.not.equal(null);
    expect(Number(m![1]) * 1024 * 1024).to.equal(core.maxMessageSize);
  });
});
