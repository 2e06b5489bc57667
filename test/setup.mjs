// Root hooks for the whole suite.
//
// Leak guard: after the last test, the process should end by itself. If a test left a
// socket, server, timer or child process behind, list them and fail instead of hanging
// until CI's time limit. The timer is unref'd, so it never keeps a clean run alive.
const GRACE_MS = 30_000;

function describe(h) {
  const name = h.constructor?.name ?? typeof h;
  try {
    if (name === 'Socket') return `${name} ${h.localAddress ?? ''}:${h.localPort ?? ''} -> ${h.remoteAddress ?? ''}:${h.remotePort ?? ''}`;
    if (name === 'Server') return `${name} ${JSON.stringify(h.address())}`;
    if (name === 'ChildProcess') return `${name} pid ${h.pid}: ${(h.spawnargs ?? []).join(' ').slice(0, 160)}`;
    if (name === 'Timeout') return `${name} ${String(h._onTimeout).slice(0, 160).replace(/\s+/g, ' ')}`;
  } catch {
    // Fall through to the bare name.
  }
  return name;
}

export const mochaHooks = {
  afterAll() {
    setTimeout(() => {
      const handles = process._getActiveHandles();
      process.stderr.write(`\nleak guard: the suite finished ${GRACE_MS / 1000} s ago but ${handles.length} handle(s) keep the process alive:\n`);
      for (const h of handles) process.stderr.write(`  ${describe(h)}\n`);
      process.exit(process.exitCode || 3);
    }, GRACE_MS).unref();
  },
};
