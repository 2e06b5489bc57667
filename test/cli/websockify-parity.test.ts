/**
 * The same bad command lines given to the real websockify (Debian's 0.10) and to tsockify:
 * both must refuse with exit code 2 and the same complaint. websockify prints optparse's
 * usage and `websockify: error: <what>`; tsockify prints `tsockify: <what> (<how to fix>)`.
 * Cases only websockify 0.13 knows (the contract) are checked against 0.13's source wording.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import { FLAGS } from '../../packages/cli/src/flags.js';
import { startProcess, startTsockify, type Proc } from '../helpers/proc.js';
import { track } from './fixtures.js';

const WEBSOCKIFY = process.env.WEBSOCKIFY_BIN ?? '/usr/bin/websockify';

async function runToEnd(p: Proc): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const timer = setTimeout(() => void p.stop(500), 5000);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

function websockify(args: string[]): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return runToEnd(track(startProcess(WEBSOCKIFY, args, { cwd: '/tmp', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } })));
}

function tsockify(args: string[]): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return runToEnd(track(startTsockify(args, { cwd: '/tmp' })));
}

/** `websockify: error: <what>` → `<what>`. */
function websockifyComplaint(stderr: string): string {
  const m = /^websockify: error: (.*)$/m.exec(stderr);
  if (!m) throw new Error(`no optparse error line in:\n${stderr}`);
  return m[1]!;
}

const SAME: Array<[string, string[]]> = [
  ['no arguments', []],
  ['no target', ['6080']],
  ['a target without a colon', ['6080', 'localhost']],
  ['a target port that is not a number', ['6080', 'localhost:vnc']],
  ['a listen port that is not a number', ['web', 'localhost:5901']],
  ['an extra positional', ['6080', 'localhost:5901', 'extra']],
  ['a target with --token-plugin', ['--token-plugin', 'TokenFile', '--token-source', '/nonexistent', '6080', 'localhost:5901']],
  ['--token-source without --token-plugin', ['--token-source', '/tmp/tokens', '6080']],
  ['--host-token without --token-plugin', ['--host-token', '6080', 'localhost:5901']],
  ['--auth-source without --auth-plugin', ['--auth-source', 'u:p', '6080', 'localhost:5901']],
  ['--web-auth without --auth-plugin', ['--web-auth', '6080', 'localhost:5901']],
  ['--web-auth without --web', ['--web-auth', '--auth-plugin', 'BasicHTTPAuth', '6080', 'localhost:5901']],
  ['--legacy-syslog without --syslog', ['--legacy-syslog', '6080', 'localhost:5901']],
  ['a --syslog port that is not a number', ['--syslog', 'loghost:x', '6080', 'localhost:5901']],
  ['--ssl-only without the certificate', ['--ssl-only', '--cert', '/nonexistent/cert.pem', '6080', 'localhost:5901']],
  ['an unknown long option', ['--bogus', '6080', 'localhost:5901']],
  ['an unknown short option in a cluster', ['-vq', '6080', 'localhost:5901']],
  ['a value on a flag', ['--verbose=yes', '6080', 'localhost:5901']],
  ['a value on an abbreviated flag', ['--run=yes', '6080', 'localhost:5901']],
  ['a value option at the end', ['6080', 'localhost:5901', '--record']],
  ['a non-integer --timeout', ['--timeout', '1.5', '6080', 'localhost:5901']],
  ['a non-integer --heartbeat given by prefix', ['--heart=abc', '6080', 'localhost:5901']],
  ['a bad --ssl-version', ['--ssl-version', 'sslv3', '6080', 'localhost:5901']],
  ['a bad --wrap-mode', ['--wrap-mode=forever', '6080', '--', 'true']],
  ['a -- with no command after it', ['6080', '--']],
  ['a prefix-abbreviated option before a bad target', ['--cer', 'x.pem', '6080', 'nocolon']],
];

/** websockify 0.13 only (Debian's 0.10 lacks these options); wording from 0.13's websocketproxy.py. */
const SOURCE_0_13: Array<[string, string[], string]> = [
  ['a bad --unix-listen-mode', ['--unix-listen', '/tmp/t.sock', '--unix-listen-mode', '0999', 'localhost:5901'], 'Error parsing listen unix socket mode'],
];

describe('tsockify command vs websockify', function () {
  before(function () {
    if (!fs.existsSync(WEBSOCKIFY)) this.skip();
  });

  describe('startup errors', () => {
    for (const [what, args] of SAME) {
      it(`refuses ${what} with exit code 2 and websockify's complaint`, async () => {
        const [w, t] = await Promise.all([websockify(args), tsockify(args)]);
        expect(w.code, w.stderr).to.equal(2);
        expect(t.code, t.stderr).to.equal(2);
        const complaint = websockifyComplaint(w.stderr);
        expect(t.stderr).to.match(/^tsockify: .* \(.+\)\n$/);
        expect(t.stderr.startsWith(`tsockify: ${complaint} (`), `tsockify said ${JSON.stringify(t.stderr)}, websockify said ${JSON.stringify(complaint)}`).to.equal(true);
      });
    }

    it('names the same candidates for an ambiguous prefix, plus its own options', async () => {
      const [w, t] = await Promise.all([websockify(['--t', '1']), tsockify(['--t', '1'])]);
      expect([w.code, t.code]).to.deep.equal([2, 2]);
      const list = (s: string): string[] => /ambiguous option: --t \((.*)\?\)/.exec(s)![1]!.split(', ');
      const theirs = list(websockifyComplaint(w.stderr));
      const ours = list(t.stderr);
      expect(ours).to.include.members(theirs);
      const added = ours.filter((o) => !theirs.includes(o));
      expect(added).to.include.members(['--target-ca', '--target-fingerprint']);
      for (const name of added) expect(FLAGS.find((f) => `--${f.name}` === name)?.group, name).to.equal('tsockify');
    });

    for (const [what, args, complaint] of SOURCE_0_13) {
      it(`refuses ${what} as websockify 0.13 does`, async () => {
        const t = await tsockify(args);
        expect(t.code).to.equal(2);
        expect(t.stderr.startsWith(`tsockify: ${complaint} (`), t.stderr).to.equal(true);
      });
    }
  });

  describe('--help', () => {
    it("lists every option websockify's --help lists", async () => {
      const [w, t] = await Promise.all([websockify(['--help']), tsockify(['--help'])]);
      expect([w.code, t.code]).to.deep.equal([0, 0]);
      const names = (text: string): string[] => [...text.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]!);
      const theirs = names(w.stdout);
      expect(theirs.length).to.be.greaterThan(30);
      expect(names(t.stdout)).to.include.members(theirs);
    });

    it('formats option lines as optparse does', async () => {
      const [w, t] = await Promise.all([websockify(['--help']), tsockify(['--help'])]);
      for (const line of ['  -h, --help            show this help message and exit', '  --record=FILE         record sessions to FILE.[session_number]', '  --idle-timeout=IDLE_TIMEOUT']) {
        expect(w.stdout).to.include(line);
        expect(t.stdout).to.include(line);
      }
    });
  });
});
