/**
 * The packages are publishable: `pnpm pack` tarballs install into an empty folder with plain
 * npm, and what they install works there (the command, the library, the viewer, the types).
 *
 * The npm registry must be reachable for the third-party dependencies (ws, pino, jose, ...);
 * the @tsockify packages themselves come only from the tarballs, never from the registry.
 * Needs `pnpm build` first (the test command builds before it runs mocha).
 */
import { expect } from 'chai';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot, startProcess, type Proc } from '../helpers/proc.js';

const run = promisify(execFile);

/** The publishable packages, in dependency order. */
const PACKAGES = ['core', 'auth-plugins', 'viewer', 'cli'] as const;
type PackageDir = (typeof PACKAGES)[number];

/** What each tarball must hold, besides package.json. */
const MUST_SHIP: Record<PackageDir, string[]> = {
  core: ['dist/index.js', 'dist/index.d.ts', 'dist/server.js', 'README.md'],
  'auth-plugins': ['dist/index.js', 'dist/index.d.ts', 'dist/registry.js', 'README.md'],
  viewer: ['dist/index.js', 'dist/index.d.ts', 'public/index.html', 'public/viewer.js', 'public/viewer.css', 'README.md'],
  cli: ['bin/tsockify.js', 'dist/main.js', 'dist/index.d.ts', 'README.md'],
};

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** pnpm on PATH, else the same pnpm the test command falls back to. */
function pnpmCommand(): { cmd: string; args: string[] } {
  if (spawnSync('pnpm', ['--version'], { stdio: 'ignore' }).status === 0) return { cmd: 'pnpm', args: [] };
  return { cmd: 'npx', args: ['--yes', 'pnpm@10'] };
}

/** npm's own noise (warnings about the user's config) is not the test's business. */
const quietEnv = { ...process.env, npm_config_loglevel: 'error', npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

function manifestOf(dir: PackageDir): Manifest {
  return JSON.parse(fs.readFileSync(path.join(repoRoot, 'packages', dir, 'package.json'), 'utf8')) as Manifest;
}

/** GET without keep-alive, so that stopping the server is not held up by an idle connection. */
function get(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

async function tarList(tgz: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tzf', tgz]);
  return stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
}

async function tarManifest(tgz: string): Promise<Manifest> {
  const { stdout } = await run('tar', ['-xzOf', tgz, 'package/package.json'], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as Manifest;
}

describe('packaging', function () {
  // pack ×4, one npm install (registry for third-party deps), one tsc run.
  this.timeout(120_000);

  let work: string;
  let packDir: string;
  let installDir: string;
  const tarballs = new Map<PackageDir, string>();
  const procs: Proc[] = [];

  before(async function () {
    for (const dir of PACKAGES) {
      const entry = path.join(repoRoot, 'packages', dir, dir === 'cli' ? 'dist/main.js' : 'dist/index.js');
      if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run \`pnpm build\` first (npm test does)`);
    }
    work = await mkdtemp(path.join(os.tmpdir(), 'tsockify-pack-'));
    packDir = path.join(work, 'tarballs');
    installDir = path.join(work, 'app');
    await mkdir(packDir);
    await mkdir(installDir);

    const pnpm = pnpmCommand();
    for (const dir of PACKAGES) {
      const before = new Set(await readdir(packDir));
      await run(pnpm.cmd, [...pnpm.args, 'pack', '--pack-destination', packDir], {
        cwd: path.join(repoRoot, 'packages', dir),
        env: quietEnv,
        timeout: 60_000,
      });
      const made = (await readdir(packDir)).filter((f) => f.endsWith('.tgz') && !before.has(f));
      expect(made, `pnpm pack in packages/${dir} made one tarball`).to.have.length(1);
      tarballs.set(dir, path.join(packDir, made[0]!));
    }

    await writeFile(path.join(installDir, 'package.json'), JSON.stringify({ name: 'tsockify-pack-smoke', private: true, type: 'module' }));
    // All four tarballs at once: the @tsockify dependencies between them resolve to these
    // files, so nothing named @tsockify/* is ever fetched from the registry.
    await run('npm', ['install', '--no-audit', '--no-fund', ...PACKAGES.map((d) => tarballs.get(d)!)], {
      cwd: installDir,
      env: quietEnv,
      timeout: 100_000,
      maxBuffer: 8 << 20,
    });
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    if (work) await rm(work, { recursive: true, force: true });
  });

  describe('pnpm pack', () => {
    it('rewrites workspace:* and catalog: versions to real ones', async () => {
      const versions = new Map(PACKAGES.map((d) => [manifestOf(d).name, manifestOf(d).version]));
      for (const dir of PACKAGES) {
        const m = await tarManifest(tarballs.get(dir)!);
        const deps = { ...m.dependencies, ...m.optionalDependencies, ...m.peerDependencies };
        for (const [name, range] of Object.entries(deps)) {
          expect(range, `${m.name} → ${name}`).not.to.match(/^(workspace|catalog):/);
          if (versions.has(name)) expect(range, `${m.name} → ${name}`).to.equal(versions.get(name));
        }
        // The source manifest does use the workspace protocols: the rewrite is what is tested.
        const source = manifestOf(dir);
        const sourceRanges = Object.values({ ...source.dependencies });
        if (dir !== 'core' && dir !== 'viewer') expect(sourceRanges.some((r) => r.startsWith('workspace:'))).to.equal(true);
      }
    });

    it('ships the built code, the types and the README of every package', async () => {
      for (const dir of PACKAGES) {
        const files = await tarList(tarballs.get(dir)!);
        for (const f of MUST_SHIP[dir]) expect(files, `${dir} tarball`).to.include(f);
        expect(files.some((f) => f.endsWith('.tsbuildinfo')), `${dir} ships no build info`).to.equal(false);
        expect(files.some((f) => f.startsWith('node_modules/')), `${dir} ships no node_modules`).to.equal(false);
      }
    });
  });

  describe('npm install of the tarballs into an empty folder', () => {
    it('installs every @tsockify package from its tarball', async () => {
      for (const dir of PACKAGES) {
        const name = manifestOf(dir).name;
        const installed = JSON.parse(await readFile(path.join(installDir, 'node_modules', name, 'package.json'), 'utf8')) as Manifest;
        expect(installed.version).to.equal(manifestOf(dir).version);
      }
      // One copy of the core: plugins and the command must share its error classes.
      expect(fs.existsSync(path.join(installDir, 'node_modules/@tsockify/cli/node_modules/@tsockify/core'))).to.equal(false);
    });

    it('runs `npx tsockify --help` and prints the usage', async () => {
      const { stdout } = await run('npx', ['--no', '--', 'tsockify', '--help'], { cwd: installDir, env: quietEnv, timeout: 30_000 });
      expect(stdout).to.match(/^Usage: \n {4}tsockify \[options\] \[source_addr:\]source_port target_addr:target_port$/m);
      expect(stdout).to.include('--token-plugin=CLASS');
      expect(stdout).to.include('--viewer');
    });

    it('runs `npx tsockify --version` with the package version', async () => {
      const { stdout } = await run('npx', ['--no', '--', 'tsockify', '--version'], { cwd: installDir, env: quietEnv, timeout: 30_000 });
      expect(stdout.trim()).to.equal(`tsockify ${manifestOf('cli').version}`);
    });

    it('exposes createServer from @tsockify/core, and it listens and closes', async () => {
      const script = `import('@tsockify/core').then(async (m) => {
        const server = m.createServer({ listen: { host: '127.0.0.1', port: 0 }, target: '127.0.0.1:5901' });
        const addresses = await server.listen();
        await server.close();
        console.log(JSON.stringify({ createServer: typeof m.createServer, toHttpStatus: typeof m.toHttpStatus, addresses }));
      })`;
      const { stdout } = await run(process.execPath, ['-e', script], { cwd: installDir, timeout: 20_000 });
      const out = JSON.parse(stdout) as { createServer: string; toHttpStatus: string; addresses: string[] };
      expect(out.createServer).to.equal('function');
      expect(out.toHttpStatus).to.equal('function');
      expect(out.addresses).to.have.length(1);
      expect(out.addresses[0]).to.match(/^127\.0\.0\.1:\d+$/);
    });

    it('exposes the plugin registry from @tsockify/auth-plugins', async () => {
      const script = `import('@tsockify/auth-plugins').then((m) => console.log(JSON.stringify(m.TOKEN_PLUGIN_NAMES)))`;
      const { stdout } = await run(process.execPath, ['-e', script], { cwd: installDir, timeout: 20_000 });
      expect(JSON.parse(stdout)).to.include.members(['TokenFile', 'JWTTokenApi', 'TokenRedis']);
    });

    it('serves the built-in viewer and noVNC from the installed packages (--viewer)', async () => {
      const bin = path.join(installDir, 'node_modules/@tsockify/cli/bin/tsockify.js');
      const proc = startProcess(process.execPath, [bin, '--viewer', '--log-format', 'json', '127.0.0.1:0', '127.0.0.1:5901'], { cwd: installDir });
      procs.push(proc);
      const [, port] = await proc.waitForOutput(/"addresses":\["127\.0\.0\.1:(\d+)"\]/, 15_000);
      const page = await get(`http://127.0.0.1:${port}/`);
      expect(page.status).to.equal(200);
      expect(page.type).to.match(/^text\/html/);
      const rfb = await get(`http://127.0.0.1:${port}/novnc/core/rfb.js`);
      expect(rfb.status).to.equal(200);
      expect(rfb.type).to.match(/^text\/javascript/);
      expect(rfb.body).to.include('export default class RFB');
      expect(await proc.stop()).to.equal(0);
    });

    it('type-checks a TypeScript consumer against the installed .d.ts files', async () => {
      const dir = path.join(installDir, 'consumer');
      await mkdir(dir);
      await writeFile(path.join(dir, 'main.ts'), [
        "import http from 'node:http';",
        "import { createServer, toHttpStatus, TokenInvalidError, type TokenPlugin, type SessionCloseInfo } from '@tsockify/core';",
        "import { createTokenPlugin, TOKEN_PLUGIN_NAMES } from '@tsockify/auth-plugins';",
        "import { viewerMounts } from '@tsockify/viewer';",
        "const tokens: TokenPlugin = { lookup: (token) => (token === 'ok' ? { host: '127.0.0.1', port: 5901 } : null) };",
        'const relay = createServer({ tokenPlugin: tokens, web: { mounts: viewerMounts() }, heartbeatMs: 30_000 });',
        'relay.on(\'sessionClose\', (info: SessionCloseInfo) => console.log(info.code, info.bytesToClient));',
        "relay.on('reject', (info) => console.log(info.status, info.code));",
        'relay.attach(http.createServer());',
        'const status: number = toHttpStatus(new TokenInvalidError());',
        'const names: readonly string[] = TOKEN_PLUGIN_NAMES;',
        'void createTokenPlugin; void status; void names;',
        '',
      ].join('\n'));
      await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: {
          module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true,
          // The consumer's own setting; @tsockify/core's .d.ts name ws types that only its dev dependencies provide.
          skipLibCheck: true,
          typeRoots: [path.join(repoRoot, 'node_modules/@types')], types: ['node'],
        },
        files: ['main.ts'],
      }));
      const tsc = path.join(repoRoot, 'node_modules/typescript/bin/tsc');
      const r = await run(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], { cwd: dir, timeout: 60_000 }).catch((err: { stdout?: string }) => {
        throw new Error(`tsc failed:\n${err.stdout ?? String(err)}`);
      });
      expect(r.stdout).to.equal('');
    });
  });
});
