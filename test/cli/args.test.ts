import { expect } from 'chai';
import { parseArgs, tokenize, matchLongName, type CliOptions, type ParseContext } from '../../packages/cli/src/args.js';
import { FLAGS } from '../../packages/cli/src/flags.js';
import { UsageError } from '../../packages/cli/src/errors.js';

/** No systemd variables, and every file exists unless a test says otherwise. */
const ctx: ParseContext = { env: {}, pid: 4242, cwd: '/srv', fileExists: () => true };

function run(argv: string[], c: ParseContext = ctx): CliOptions {
  const r = parseArgs(argv, c);
  if (r.kind !== 'run') throw new Error(`expected a run, got ${r.kind}`);
  return r.options;
}

function usageError(argv: string[], c: ParseContext = ctx): UsageError {
  try {
    parseArgs(argv, c);
  } catch (err) {
    expect(err).to.be.instanceOf(UsageError);
    expect((err as UsageError).exitCode).to.equal(2);
    return err as UsageError;
  }
  throw new Error(`expected a UsageError for ${JSON.stringify(argv)}`);
}

describe('cli args', () => {
  describe('#tokenize (optparse rules)', () => {
    it('accepts --opt=value and --opt value alike', () => {
      expect(run(['--record=/tmp/r', '6080', 'h:1']).record).to.equal('/tmp/r');
      expect(run(['--record', '/tmp/r', '6080', 'h:1']).record).to.equal('/tmp/r');
    });

    it('takes the next argument as the value even when it starts with a dash', () => {
      expect(run(['--key-password', '-secret-', '6080', 'h:1']).tls.keyPassword).to.equal('-secret-');
    });

    it('keeps everything after the first = in the value', () => {
      expect(run(['--token-source=a=b', '--token-plugin', 'TokenFile', '6080']).target).to.deep.include({ source: 'a=b' });
    });

    it('expands any unique prefix of a long option (--cer = --cert)', () => {
      expect(run(['--cer', 'x.pem', '6080', 'h:1']).tls.cert).to.equal('x.pem');
      expect(run(['--cer=x.pem', '6080', 'h:1']).tls.cert).to.equal('x.pem');
      expect(run(['--run', '6080', 'h:1']).runOnce).to.equal(true);
      expect(run(['--idle', '5', '6080', 'h:1']).idleTimeout).to.equal(5);
    });

    it('prefers an exact name over longer names it prefixes (--web vs --web-auth)', () => {
      expect(matchLongName('web')).to.equal('web');
      expect(matchLongName('key')).to.equal('key');
    });

    it('names every candidate of an ambiguous prefix, sorted', () => {
      const err = usageError(['--t', '1']);
      const listed = /^ambiguous option: --t \((.*)\?\)$/.exec(err.message)![1]!.split(', ');
      expect(listed).to.deep.equal([...listed].sort());
      expect(listed).to.include.members(['--target-ca', '--target-config', '--target-fingerprint', '--timeout', '--token-plugin', '--token-source', '--traffic']);
      expect(listed.every((n) => n.startsWith('--t'))).to.equal(true);
      expect(usageError(['--ssl', 'x']).message).to.match(/^ambiguous option: --ssl \(--ssl-ciphers, --ssl-only, --ssl-target, --ssl-version\?\)$/);
    });

    it('keeps a prefix websockify resolves uniquely on its websockify meaning (--log = --log-file)', () => {
      expect(run(['--log', 'f.log', '6080', 'h:1']).log.file).to.equal('f.log');
      expect(run(['--target', 'tokens.cfg', '6080']).target).to.deep.include({ plugin: 'TokenFile', source: '/srv/tokens.cfg' });
      expect(run(['--wrap', 'ignore', '6080', '--', 'cmd']).wrap?.mode).to.equal('ignore');
      expect(matchLongName('web-')).to.equal('web-auth');
      expect(matchLongName('log-fo')).to.equal('log-format');
    });

    it('rejects an unknown option by name, suggests a close one and --help', () => {
      const err = usageError(['--certs', 'x', '6080', 'h:1']);
      expect(err.message).to.equal('no such option: --certs');
      expect(err.hint).to.include('did you mean --cert?').and.include('--help');
      expect(usageError(['--no-verbose']).message).to.equal('no such option: --no-verbose');
    });

    it('treats -v, -D and -6 as short flags, clustered or not', () => {
      const o = run(['-vD6', '6080', 'h:1']);
      expect([o.verbose, o.daemon, o.preferIpv6]).to.deep.equal([true, true, true]);
      const p = run(['-v', '6080', '-6', 'h:1']);
      expect([p.verbose, p.daemon, p.preferIpv6]).to.deep.equal([true, false, true]);
    });

    it('rejects an unknown short flag, also inside a cluster', () => {
      expect(usageError(['-x']).message).to.equal('no such option: -x');
      expect(usageError(['-vx', '6080', 'h:1']).message).to.equal('no such option: -x');
    });

    it('rejects a value on a flag that takes none', () => {
      expect(usageError(['--verbose=1']).message).to.equal('--verbose option does not take a value');
      expect(usageError(['--verb=1']).message).to.equal('--verbose option does not take a value');
    });

    it('rejects a value option at the end of argv', () => {
      expect(usageError(['6080', 'h:1', '--cert']).message).to.equal('--cert option requires 1 argument');
    });

    it('lets options and positionals interleave', () => {
      const o = run(['6080', '--verbose', 'h:1', '--record', 'r']);
      expect(o.listen).to.deep.equal({ kind: 'tcp', host: undefined, port: 6080 });
      expect(o.target).to.deep.equal({ kind: 'tcp', host: 'h', port: 1 });
      expect([o.verbose, o.record]).to.deep.equal([true, 'r']);
    });

    it('stops option parsing at --', () => {
      const t = tokenize(['-v', '6080', '--', '-D', '--cert', 'x']);
      expect(t.positionals).to.deep.equal(['6080']);
      expect(t.afterDashDash).to.deep.equal(['-D', '--cert', 'x']);
      expect(t.values.has('daemon')).to.equal(false);
    });

    it('treats a lone - as a positional', () => {
      expect(tokenize(['-']).positionals).to.deep.equal(['-']);
    });

    it('converts integers the optparse way and names the bad value', () => {
      expect(run(['--timeout', '0x10', '6080', 'h:1']).timeout).to.equal(16);
      expect(run(['--timeout', '010', '6080', 'h:1']).timeout).to.equal(8);
      expect(run(['--heartbeat', '30', '6080', 'h:1']).heartbeat).to.equal(30);
      expect(usageError(['--timeout', 'abc']).message).to.equal("option --timeout: invalid integer value: 'abc'");
      expect(usageError(['--time', '1.5']).message).to.equal("option --timeout: invalid integer value: '1.5'");
    });

    it('rejects a negative timeout, which websockify would take as "exit now"', () => {
      expect(usageError(['--timeout', '-5', '6080', 'h:1']).hint).to.match(/negative/);
    });

    it('checks choices and lists them', () => {
      expect(usageError(['--ssl-version', 'sslv3']).message).to.equal(
        "option --ssl-version: invalid choice: 'sslv3' (choose from 'default', 'tlsv1_1', 'tlsv1_2', 'tlsv1_3')",
      );
      expect(usageError(['--wrap-mode=x']).message).to.equal("option --wrap-mode: invalid choice: 'x' (choose from 'exit', 'ignore', 'respawn')");
      expect(usageError(['--log-format', 'xml']).message).to.match(/^option --log-format: invalid choice: 'xml'/);
    });

    it('reads seconds with fractions and byte counts with suffixes', () => {
      const o = run(['--connect-timeout', '2.5', '--handshake-timeout=3', '--max-message-size', '1m', '6080', 'h:1']);
      expect([o.connectTimeout, o.handshakeTimeout, o.maxMessageSize]).to.deep.equal([2.5, 3, 1024 * 1024]);
      expect(run(['--max-message-size', '65536', '6080', 'h:1']).maxMessageSize).to.equal(65536);
      expect(usageError(['--max-message-size', 'lots']).message).to.match(/invalid byte count/);
      expect(usageError(['--connect-timeout', '0']).message).to.match(/invalid number of seconds/);
    });

    it('acts on --help and --version at once, as optparse does', () => {
      expect(parseArgs(['--help', '--bogus'], ctx)).to.deep.equal({ kind: 'help' });
      expect(parseArgs(['-h'], ctx)).to.deep.equal({ kind: 'help' });
      expect(parseArgs(['--hel'], ctx)).to.deep.equal({ kind: 'help' });
      expect(parseArgs(['--version'], ctx)).to.deep.equal({ kind: 'version' });
      expect(usageError(['--bogus', '--help']).message).to.equal('no such option: --bogus');
    });
  });

  describe('#parseArgs positionals', () => {
    it('reads [source_addr:]source_port target_addr:target_port', () => {
      const o = run(['127.0.0.1:6080', 'vnc.example:5901']);
      expect(o.listen).to.deep.equal({ kind: 'tcp', host: '127.0.0.1', port: 6080 });
      expect(o.target).to.deep.equal({ kind: 'tcp', host: 'vnc.example', port: 5901 });
    });

    it('listens on every interface without source_addr', () => {
      expect(run(['6080', 'h:1']).listen).to.deep.equal({ kind: 'tcp', host: undefined, port: 6080 });
      expect(run([':6080', 'h:1']).listen).to.deep.equal({ kind: 'tcp', host: undefined, port: 6080 });
    });

    it('splits on the LAST colon and strips brackets', () => {
      expect(run(['[::1]:6080', '[fe80::1]:5901']).listen).to.deep.equal({ kind: 'tcp', host: '::1', port: 6080 });
      expect(run(['::1:6080', '::1:5901']).target).to.deep.equal({ kind: 'tcp', host: '::1', port: 5901 });
      expect(run(['6080', '[fe80::1]:5901']).target).to.deep.equal({ kind: 'tcp', host: 'fe80::1', port: 5901 });
    });

    it('says "Too few arguments" without a source port, or without a target', () => {
      expect(usageError([]).message).to.equal('Too few arguments');
      expect(usageError(['6080']).message).to.equal('Too few arguments');
    });

    it('says "Error parsing target" for a target without a colon', () => {
      const err = usageError(['6080', 'localhost']);
      expect(err.message).to.equal('Error parsing target');
      expect(err.hint).to.include('"localhost"').and.include('target_addr:target_port');
      expect(usageError(['6080', ':5901']).message).to.equal('Error parsing target');
    });

    it('says "Error parsing target port" for a bad target port', () => {
      expect(usageError(['6080', 'h:vnc']).message).to.equal('Error parsing target port');
      expect(usageError(['6080', 'h:70000']).message).to.equal('Error parsing target port');
      expect(usageError(['6080', 'h:0']).message).to.equal('Error parsing target port');
    });

    it('says "Error parsing listen port" for a bad source port', () => {
      expect(usageError(['x', 'h:1']).message).to.equal('Error parsing listen port');
      expect(usageError(['[::1]:x', 'h:1']).message).to.equal('Error parsing listen port');
      expect(usageError(['65536', 'h:1']).message).to.equal('Error parsing listen port');
    });

    it('says "Too many arguments" for extra positionals', () => {
      expect(usageError(['6080', 'h:1', 'extra']).message).to.equal('Too many arguments');
      expect(usageError(['--token-plugin', 'TokenFile', '--token-source', 'f', '6080', 'h:1']).message).to.equal('Too many arguments');
      expect(usageError(['--unix-target', '/s', '6080', 'h:1']).message).to.equal('Too many arguments');
    });

    it('reads --token-plugin=CLASS [source_addr:]source_port', () => {
      const o = run(['--token-plugin=TokenFile', '--token-source', 'tokens/', '6080']);
      expect(o.target).to.deep.equal({ kind: 'token', plugin: 'TokenFile', source: 'tokens/', fromTargetConfig: false });
    });

    it('reads --unix-target=FILE [source_addr:]source_port', () => {
      expect(run(['--unix-target=/run/vnc.sock', '6080']).target).to.deep.equal({ kind: 'unix', path: '/run/vnc.sock' });
    });

    it('reads [source_addr:]source_port -- WRAP_COMMAND_LINE', () => {
      const o = run(['6080', '--', 'Xvnc', ':1', '-rfbport', '5901']);
      expect(o.listen).to.deep.equal({ kind: 'tcp', host: undefined, port: 6080 });
      expect(o.target).to.deep.equal({ kind: 'wrap-auto' });
      expect(o.wrap).to.deep.equal({ command: ['Xvnc', ':1', '-rfbport', '5901'], mode: 'exit' });
    });

    it('takes the source port from after -- when none came before it, as websockify does', () => {
      const o = run(['--', '6080', 'Xvnc', ':1']);
      expect(o.listen).to.deep.include({ port: 6080 });
      expect(o.wrap?.command).to.deep.equal(['Xvnc', ':1']);
    });

    it('refuses a positional between the source and -- in wrap mode', () => {
      const err = usageError(['6080', 'h:1', '--', 'cmd']);
      expect(err.message).to.equal('Too many arguments');
      expect(err.hint).to.include('wrap mode');
    });

    it('treats a -- with nothing after it as no wrap command', () => {
      expect(usageError(['6080', '--']).message).to.equal('Too few arguments');
    });

    it('uses --wrap-target as the target of a wrapped command', () => {
      const o = run(['--wrap-target', 'localhost:5901', '6080', '--', 'Xvnc', ':1']);
      expect(o.target).to.deep.equal({ kind: 'tcp', host: 'localhost', port: 5901 });
      expect(usageError(['--wrap-target', 'localhost:5901', '6080', 'h:1']).message).to.equal('You must use -- WRAP_COMMAND_LINE to use --wrap-target');
      expect(usageError(['--wrap-target', 'nocolon', '6080', '--', 'x']).message).to.equal('Error parsing --wrap-target');
    });

    it('takes the listening socket from fd 0 with --inetd (no source port)', () => {
      const o = run(['--inetd', 'h:1']);
      expect(o.listen).to.deep.equal({ kind: 'fd', fd: 0, from: 'inetd' });
      expect(o.target).to.deep.include({ host: 'h', port: 1 });
    });

    it('listens on a unix socket with --unix-listen and parses the octal mode', () => {
      expect(run(['--unix-listen', '/run/t.sock', 'h:1']).listen).to.deep.equal({ kind: 'unix', path: '/run/t.sock', mode: 0o600 });
      expect(run(['--unix-listen', '/s', '--unix-listen-mode', '660', 'h:1']).listen).to.deep.include({ mode: 0o660 });
      expect(run(['--unix-listen', '/s', '--unix-listen-mode', '0o750', 'h:1']).listen).to.deep.include({ mode: 0o750 });
      expect(usageError(['--unix-listen', '/s', '--unix-listen-mode', '9', 'h:1']).message).to.equal('Error parsing listen unix socket mode');
    });
  });

  describe('#parseArgs systemd socket activation', () => {
    const activated: ParseContext = { ...ctx, env: { LISTEN_FDS: '1', LISTEN_PID: '4242' } };

    it('listens on fd 3 when LISTEN_FDS and LISTEN_PID name this process', () => {
      const o = run(['h:1'], activated);
      expect(o.listen).to.deep.equal({ kind: 'fd', fd: 3, from: 'systemd' });
      expect(o.target).to.deep.include({ host: 'h', port: 1 });
    });

    it('accepts and ignores a source port on the command line', () => {
      const o = run(['6080', 'h:1'], activated);
      expect(o.listen).to.deep.include({ fd: 3 });
      expect(o.ignoredSource).to.equal('6080');
      expect(run(['--token-plugin', 'TokenFile', '6080'], activated).ignoredSource).to.equal('6080');
    });

    it('ignores LISTEN_FDS meant for another process', () => {
      const o = run(['6080', 'h:1'], { ...ctx, env: { LISTEN_FDS: '1', LISTEN_PID: '1' } });
      expect(o.listen).to.deep.equal({ kind: 'tcp', host: undefined, port: 6080 });
    });

    it('lets --inetd and --unix-listen win over LISTEN_FDS', () => {
      expect(run(['--inetd', 'h:1'], activated).listen).to.deep.include({ fd: 0 });
      expect(run(['--unix-listen=/s', 'h:1'], activated).listen).to.deep.include({ kind: 'unix' });
    });
  });

  describe('#parseArgs --workers', () => {
    it('is 1 (one process, no cluster) by default, a count when given, and the CPU count for auto', () => {
      expect(run(['6080', 'h:1']).workers).to.equal(1);
      expect(run(['--workers', '3', '6080', 'h:1']).workers).to.equal(3);
      expect(run(['--workers=auto', '6080', 'h:1'], { ...ctx, cpuCount: () => 6 }).workers).to.equal(6);
      expect(run(['--wo', '0x2', '6080', 'h:1']).workers).to.equal(2);
    });

    it('refuses a count below 1 or not a number, in optparse words', () => {
      expect(usageError(['--workers', '0', '6080', 'h:1']).message).to.equal("option --workers: invalid value: '0'");
      expect(usageError(['--workers', '-2', '6080', 'h:1']).message).to.equal("option --workers: invalid value: '-2'");
      expect(usageError(['--workers', 'many', '6080', 'h:1']).message).to.equal("option --workers: invalid integer value: 'many'");
    });

    it('refuses what only one process can do, naming both flags; --timeout 0 (off) and --workers 1 are fine', () => {
      const many = ['--workers', '2'];
      expect(usageError([...many, '--run-once', '6080', 'h:1']).message).to.equal('--workers cannot be combined with --run-once');
      expect(usageError([...many, '--timeout', '9', '6080', 'h:1']).message).to.equal('--workers cannot be combined with --timeout');
      expect(usageError([...many, '--idle-timeout', '9', '6080', 'h:1']).message).to.equal('--workers cannot be combined with --idle-timeout');
      expect(usageError([...many, '--inetd', 'h:1']).message).to.equal('--workers cannot be combined with --inetd');
      expect(usageError([...many, 'h:1'], { ...ctx, env: { LISTEN_FDS: '1', LISTEN_PID: '4242' } }).message)
        .to.equal('--workers cannot be combined with systemd socket activation (LISTEN_FDS)');
      expect(usageError([...many, '6080', '--', 'Xvnc', ':1']).message).to.equal('--workers cannot be combined with a wrapped command (-- COMMAND)');
      expect(usageError(['--workers', 'auto', '--run-once', '6080', 'h:1'], { ...ctx, cpuCount: () => 1 }).message).to.match(/--run-once/);
      expect(run([...many, '--timeout', '0', '6080', 'h:1']).workers).to.equal(2);
      expect(run(['--workers', '1', '--run-once', '6080', 'h:1']).runOnce).to.equal(true);
    });
  });

  describe('#parseArgs startup errors (websockify wording, then a fix)', () => {
    const cases: Array<[string[], string, RegExp]> = [
      [['--token-source', 'f', '6080'], 'You must use --token-plugin to use --token-source', /--token-plugin CLASS/],
      [['--host-token', '6080', 'h:1'], 'You must use --token-plugin to use --host-token', /--token-plugin/],
      [['--auth-source', 'u:p', '6080', 'h:1'], 'You must use --auth-plugin to use --auth-source', /--auth-plugin/],
      [['--web-auth', '--web', '/w', '6080', 'h:1'], 'You must use --auth-plugin to use --web-auth', /--auth-plugin/],
      [['--web-auth', '--auth-plugin', 'BasicHTTPAuth', '6080', 'h:1'], 'You must use --web to use --web-auth', /--web DIR/],
      [['--legacy-syslog', '6080', 'h:1'], 'You must use --syslog to use --legacy-syslog', /--syslog/],
      [['--syslog', 'loghost:five', '6080', 'h:1'], 'Error parsing syslog port', /HOST:PORT/],
      [['--target-ca', 'ca.pem', '6080', 'h:1'], 'You must use --ssl-target to use --target-ca', /--ssl-target/],
      [['--target-fingerprint', 'AA', '6080', 'h:1'], 'You must use --ssl-target to use --target-fingerprint', /--ssl-target/],
      [['--ssl-target', '--target-fingerprint', 'AA', '6080', 'h:1'], 'invalid --target-fingerprint "AA"', /64 hex digits/],
      [['--web-index', 'vnc.html', '6080', 'h:1'], 'You must use --web to use --web-index', /--web DIR/],
      [['--unix-target', '/s', '--token-plugin', 'TokenFile', '6080'], '--unix-target and --token-plugin cannot be combined', /give one/],
    ];
    for (const [argv, message, hint] of cases) {
      it(`${message} for ${argv.join(' ')}`, () => {
        const err = usageError(argv);
        expect(err.message).to.equal(message);
        expect(err.hint).to.match(hint);
      });
    }

    it('refuses --ssl-only when the certificate file is missing, naming it', () => {
      const err = usageError(['--ssl-only', '--cert', 'missing.pem', '6080', 'h:1'], { ...ctx, fileExists: () => false });
      expect(err.message).to.equal('SSL only and missing.pem not found');
      expect(usageError(['--ssl-only', '6080', 'h:1'], { ...ctx, fileExists: () => false }).message).to.equal('SSL only and self.pem not found');
    });

    it('reports the first problem in websockify order (option checks before positionals)', () => {
      expect(usageError(['--token-source', 'f']).message).to.equal('You must use --token-plugin to use --token-source');
      expect(usageError(['--legacy-syslog', '--host-token']).message).to.equal('You must use --token-plugin to use --host-token');
    });
  });

  describe('#parseArgs options', () => {
    it('defaults as websockify does', () => {
      const o = run(['6080', 'h:1']);
      expect(o.tls).to.deep.include({ cert: 'self.pem', certGiven: false, sslOnly: false, sslVersion: 'default' });
      expect([o.timeout, o.idleTimeout, o.heartbeat, o.wrap, o.targetTls]).to.deep.equal([0, 0, 0, undefined, undefined]);
    });

    it('maps --target-config to TokenFile with an absolute source, with a deprecation warning', () => {
      const o = run(['--target-config', 'conf/tokens', '6080']);
      expect(o.target).to.deep.equal({ kind: 'token', plugin: 'TokenFile', source: '/srv/conf/tokens', fromTargetConfig: true });
      expect(o.warnings.join('\n')).to.match(/deprecated.*--token-plugin TokenFile --token-source FILE/);
    });

    it('normalises --target-fingerprint to colon-separated upper-case hex', () => {
      const hex = 'ab'.repeat(32);
      const o = run(['--ssl-target', '--target-fingerprint', hex, '--target-ca', 'ca.pem', '6080', 'h:1']);
      expect(o.targetTls).to.deep.equal({ caFile: 'ca.pem', fingerprint256: Array(32).fill('AB').join(':') });
    });

    it('collects the tsockify additions', () => {
      const o = run(['--viewer', '--web', 'w', '--web-index', 'vnc.html', '--file-only', '--log-format', 'json', '6080', 'h:1']);
      expect(o.web).to.deep.equal({ root: 'w', index: 'vnc.html', fileOnly: true, auth: false, viewer: true });
      expect(o.log.format).to.equal('json');
    });

    it('accepts --libserver and warns that it is ignored', () => {
      expect(run(['--libserver', '6080', 'h:1']).warnings.join()).to.match(/--libserver is ignored/);
    });

    it('parses every flag in the table under its own name', () => {
      for (const f of FLAGS) {
        if (f.name === 'help' || f.name === 'version') continue;
        const t = tokenize(f.type === 'boolean' ? [`--${f.name}`] : [`--${f.name}`, f.choices?.[0] ?? '1']);
        expect(t.values.has(f.name), f.name).to.equal(true);
      }
    });
  });
});
