import { expect } from 'chai';
import { FLAGS, WEBSOCKIFY_LONG_NAMES } from '../../packages/cli/src/flags.js';
import { helpText, optionStrings } from '../../packages/cli/src/help.js';

/** websockify 0.13's options, in the order of its optparse setup (websocketproxy.py). */
const WEBSOCKIFY_0_13 = [
  'help', 'verbose', 'traffic', 'record', 'daemon', 'run-once', 'timeout', 'idle-timeout', 'cert', 'key', 'key-password',
  'ssl-only', 'ssl-target', 'verify-client', 'cafile', 'ssl-version', 'ssl-ciphers', 'unix-listen', 'unix-listen-mode',
  'unix-target', 'inetd', 'web', 'web-auth', 'wrap-mode', 'prefer-ipv6', 'libserver', 'target-config', 'token-plugin',
  'token-source', 'host-token', 'auth-plugin', 'auth-source', 'heartbeat', 'log-file', 'syslog', 'legacy-syslog', 'file-only',
];

describe('cli flags', () => {
  describe('FLAGS', () => {
    it("holds websockify 0.13's options in its order, then tsockify's", () => {
      expect(FLAGS.filter((f) => f.group === 'websockify').map((f) => f.name)).to.deep.equal(WEBSOCKIFY_0_13);
      expect([...WEBSOCKIFY_LONG_NAMES].sort()).to.deep.equal([...WEBSOCKIFY_0_13].sort());
      expect(FLAGS.findIndex((f) => f.group === 'tsockify')).to.equal(WEBSOCKIFY_0_13.length);
    });

    it('has unique long and short names', () => {
      const longs = FLAGS.flatMap((f) => [f.name, ...(f.aliases ?? [])]);
      const shorts = FLAGS.flatMap((f) => f.short ?? []);
      expect(new Set(longs).size).to.equal(longs.length);
      expect(new Set(shorts).size).to.equal(shorts.length);
      expect(shorts.sort()).to.deep.equal(['6', 'D', 'h', 'v']);
    });

    it('gives every value flag a metavar, every choice flag its choices, and every flag a help text', () => {
      for (const f of FLAGS) {
        expect(f.help.length, f.name).to.be.greaterThan(5);
        if (f.type !== 'boolean') expect(f.metavar, f.name).to.be.a('string');
        if (f.type === 'choice') expect(f.choices, f.name).to.be.an('array').that.is.not.empty;
      }
    });

    it("keeps websockify's defaults", () => {
      const byName = Object.fromEntries(FLAGS.map((f) => [f.name, f]));
      expect(byName.cert!.default).to.equal('self.pem');
      expect(byName['ssl-version']!.default).to.equal('default');
      expect(byName['wrap-mode']!.default).to.equal('exit');
      expect([byName.timeout!.default, byName['idle-timeout']!.default, byName.heartbeat!.default]).to.deep.equal([0, 0, 0]);
    });
  });

  describe('#helpText', () => {
    it('lists every flag of the table', () => {
      const help = helpText(80);
      for (const f of FLAGS) expect(help, f.name).to.include(`  ${optionStrings(f)}`);
    });

    it('keeps lines within the terminal width, except option names too long to wrap', () => {
      for (const line of helpText(80).split('\n')) {
        if (line.length > 78) expect(line.trim(), line).to.match(/^--[\w-]+=\S+$/);
      }
    });
  });
});
