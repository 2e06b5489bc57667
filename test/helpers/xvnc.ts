import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './net.js';
import { startProcess, type Proc } from './proc.js';

/**
 * A real X desktop for end-to-end tests: TigerVNC `Xvnc` on a free display, a known root
 * colour, an xterm whose shell writes every typed line to a file, and `xinput test-xi2 --root`
 * logging the raw key events that arrive through the VNC keyboard. Everything it starts is
 * stopped by PID in `stop()`.
 */
export interface XvncOptions {
  /** VNC password: `-SecurityTypes VncAuth` with a file made by `vncpasswd -f`. Omitted: `None`. */
  password?: string;
  width?: number;
  height?: number;
  /** Root window colour as `#rrggbb` (set with `xsetroot -solid`). */
  rootColor?: string;
  /** Bound on the whole startup, in ms. */
  startTimeoutMs?: number;
}

export interface Rect { x: number; y: number; width: number; height: number }

export interface XvncServer {
  /** `:N` */
  display: string;
  displayNumber: number;
  rfbPort: number;
  width: number;
  height: number;
  rootColor: { r: number; g: number; b: number };
  /** Where the xterm sits on the desktop: sample the root colour outside it. */
  xterm: Rect;
  /** Lines the xterm's shell has received so far (cat writes a line when Enter arrives). */
  typedLines(): Promise<string[]>;
  /** Resolves once a line equal to `line` has been typed into the xterm, rejects after timeoutMs. */
  waitForTypedLine(line: string, timeoutMs?: number): Promise<void>;
  /** Keysym names of key presses that came in through the VNC keyboard (not XTEST), in order. */
  vncKeyPresses(): Promise<string[]>;
  /** Output of Xvnc and its clients, for failure messages. */
  logs(): string;
  /** Stop the X clients, then Xvnc, by PID; remove what it left behind. Idempotent. */
  stop(): Promise<void>;
}

const RFB_BANNER = 'RFB 003.008\n';

function parseColor(hex: string): { r: number; g: number; b: number } {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) throw new Error(`invalid rootColor "${hex}": expected #rrggbb`);
  return { r: parseInt(m[1]!, 16), g: parseInt(m[2]!, 16), b: parseInt(m[3]!, 16) };
}

/** Run a short X client to completion with a bound; rejects with its output on failure. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Resolve once `port` answers with the RFB 3.8 banner; reject on `deadline` or when `abort()` says so. */
async function waitForRfbBanner(port: number, deadline: number, abort: () => string | null): Promise<void> {
  for (;;) {
    const why = abort();
    if (why) throw new Error(why);
    const banner = await new Promise<string>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      let got = '';
      const done = (v: string) => { clearTimeout(t); s.destroy(); resolve(v); };
      const t = setTimeout(() => done(got), 1000);
      s.on('data', (d: Buffer) => { got += d.toString('latin1'); if (got.length >= RFB_BANNER.length) done(got); });
      s.on('error', () => done(''));
      s.on('close', () => done(got));
    });
    if (banner === RFB_BANNER) return;
    if (banner.length > 0) throw new Error(`port ${port} answered ${JSON.stringify(banner)}, expected ${JSON.stringify(RFB_BANNER)}`);
    if (Date.now() > deadline) throw new Error(`Xvnc did not answer on port ${port} in time`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function displayFree(n: number): boolean {
  return !existsSync(`/tmp/.X${n}-lock`) && !existsSync(`/tmp/.X11-unix/X${n}`);
}

/** Remove a display's lock and socket, but only if the lock names `pid` (ours). */
async function removeLeftovers(n: number, pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  const lock = `/tmp/.X${n}-lock`;
  const owner = await readFile(lock, 'latin1').then((s) => Number(s.trim()), () => NaN);
  if (owner !== pid) return;
  await rm(lock, { force: true });
  await rm(`/tmp/.X11-unix/X${n}`, { force: true });
}

export async function startXvnc(opts: XvncOptions = {}): Promise<XvncServer> {
  const width = opts.width ?? 800;
  const height = opts.height ?? 600;
  const rootColorHex = opts.rootColor ?? '#1e90ff';
  const rootColor = parseColor(rootColorHex);
  const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tsockify-xvnc-'));
  const typedFile = path.join(dir, 'typed.txt');
  const procs: Proc[] = [];
  let xvnc: Proc | undefined;
  let displayNumber = -1;
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Clients first, so Xvnc does not log a storm of broken connections; then the server.
    for (const p of procs.reverse()) await p.stop(2000);
    if (xvnc) {
      await xvnc.stop(3000);
      await removeLeftovers(displayNumber, xvnc.child.pid);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const securityArgs: string[] = ['-SecurityTypes', 'None'];
    if (opts.password !== undefined) {
      const passwdFile = path.join(dir, 'passwd');
      const obfuscated = execFileSync('vncpasswd', ['-f'], { input: `${opts.password}\n`, timeout: 5000 });
      await writeFile(passwdFile, obfuscated, { mode: 0o600 });
      securityArgs.splice(0, 2, '-SecurityTypes', 'VncAuth', '-PasswordFile', passwdFile);
    }

    // Another test run (or a developer's desktop) may take a display between our check and
    // Xvnc's bind; Xvnc then exits at once, and we try the next number.
    let rfbPort = 0;
    const first = 20 + Math.floor(Math.random() * 150);
    for (let attempt = 0; ; attempt++) {
      let n = first + attempt;
      while (!displayFree(n)) n++;
      rfbPort = await freePort();
      const p = startProcess('Xvnc', [
        `:${n}`, '-rfbport', String(rfbPort), '-localhost', '-nolisten', 'tcp', '-noreset',
        '-geometry', `${width}x${height}`, '-depth', '24', '-desktop', 'tsockify-e2e',
        ...securityArgs,
      ]);
      try {
        await waitForRfbBanner(rfbPort, deadline, () =>
          p.child.exitCode !== null || p.child.signalCode !== null ? `Xvnc :${n} exited:\n${p.stdout()}${p.stderr()}` : null);
        xvnc = p;
        displayNumber = n;
        break;
      } catch (err) {
        await p.stop(1000);
        await removeLeftovers(n, p.child.pid);
        if (attempt >= 4 || Date.now() > deadline) throw err;
      }
    }

    const display = `:${displayNumber}`;
    const env: NodeJS.ProcessEnv = { ...process.env, DISPLAY: display };
    delete env.XAUTHORITY;

    // Raw events are delivered whatever has the focus; the source device tells VNC input
    // ("TigerVNC keyboard") from anything else.
    const xinput = startProcess('xinput', ['test-xi2', '--root'], { env });
    procs.push(xinput);

    const xterm: Rect = { x: width - 260, y: height - 140, width: 0, height: 0 };
    const term = startProcess('xterm', [
      '-geometry', `40x8+${xterm.x}+${xterm.y}`, '-bg', 'black', '-fg', 'white',
      '-title', 'tsockify-e2e', '-e', 'sh', '-c', 'exec cat > "$0"', typedFile,
    ], { env });
    procs.push(term);

    // There is no window manager; give the xterm the keyboard focus explicitly so typed keys
    // reach it wherever the pointer goes. --sync waits until it is mapped.
    const remaining = () => Math.max(1000, deadline - Date.now());
    const win = (await run('xdotool', ['search', '--sync', '--onlyvisible', '--pid', String(term.child.pid)], env, remaining()))
      .trim().split('\n')[0]!;
    await run('xdotool', ['windowfocus', '--sync', win], env, remaining());
    const geom = await run('xdotool', ['getwindowgeometry', win], env, remaining());
    const size = /Geometry: (\d+)x(\d+)/.exec(geom);
    if (size) { xterm.width = Number(size[1]) + 2; xterm.height = Number(size[2]) + 2; }

    // After the clients, so that the root never shows the default weave once a viewer connects.
    await run('xsetroot', ['-solid', rootColorHex], env, remaining());

    const vncKeyboardId = (await run('xinput', ['list', '--id-only', 'TigerVNC keyboard'], env, remaining())).trim();

    const typedLines = async () => {
      const text = await readFile(typedFile, 'utf8').catch(() => '');
      const lines = text.split('\n');
      lines.pop(); // the unterminated rest
      return lines;
    };

    const vncKeyPresses = async (): Promise<string[]> => {
      // Xvnc may bind keysyms to spare keycodes on the fly, so read the map now, not at start.
      const map = new Map<number, string>();
      for (const m of (await run('xmodmap', ['-pke'], env)).matchAll(/^keycode\s+(\d+) = (\S+)/gm)) {
        map.set(Number(m[1]), m[2]!);
      }
      const keys: string[] = [];
      for (const m of xinput.stdout().matchAll(/EVENT type \d+ \(RawKeyPress\)\n\s+device: \d+ \((\d+)\)\n\s+detail: (\d+)/g)) {
        if (m[1] === vncKeyboardId) keys.push(map.get(Number(m[2])) ?? `keycode ${m[2]}`);
      }
      return keys;
    };

    return {
      display,
      displayNumber,
      rfbPort,
      width,
      height,
      rootColor,
      xterm,
      typedLines,
      async waitForTypedLine(line, timeoutMs = 5000) {
        const until = Date.now() + timeoutMs;
        for (;;) {
          const lines = await typedLines();
          if (lines.includes(line)) return;
          if (Date.now() > until) {
            throw new Error(`the xterm on ${display} did not receive the line ${JSON.stringify(line)} within ${timeoutMs} ms; ` +
              `lines so far: ${JSON.stringify(lines)}; VNC key presses: ${JSON.stringify(await vncKeyPresses())}`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      vncKeyPresses,
      logs: () => [xvnc!, ...procs].map((p) => p.stdout() + p.stderr()).join('\n'),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
