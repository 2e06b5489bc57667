import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One folder served under a URL path prefix (the shape of `web.mounts` in @tsockify/core). */
export interface ViewerMount {
  /** URL path without a trailing slash, `/` for the site root. */
  prefix: string;
  /** Absolute folder on disk. */
  dir: string;
}

/** URL prefix the page loads noVNC from; `public/viewer.js` imports `novnc/core/rfb.js` relative to itself. */
export const NOVNC_PREFIX = '/novnc';

/** The viewer's own static files (index.html, viewer.js, viewer.css), next to `dist/` in the package. */
export const viewerRoot: string = fileURLToPath(new URL('../public/', import.meta.url)).replace(/[\\/]$/, '');

/**
 * Root folder of the installed `@novnc/novnc` package. Resolved through Node's resolver
 * (its `exports` names only `core/rfb.js`, so `package.json` itself is not resolvable), which
 * finds it in a pnpm workspace and in a plain `npm install` of the tarball alike.
 */
export function novncRoot(): string {
  const require = createRequire(import.meta.url);
  const rfb = require.resolve('@novnc/novnc');
  return path.dirname(path.dirname(rfb));
}

/**
 * The folders `tsockify --viewer` serves: the page at `base` (default `/`), and the two
 * folders of noVNC's ES modules it imports (`core/` and `vendor/`, which `core/` imports by
 * relative path) under `${base}novnc/`. noVNC 1.7 ships plain browser-loadable ES modules with
 * only relative imports, so no bundler is needed, and the page works under any prefix (it
 * uses relative URLs). Serve them by longest prefix.
 */
export function viewerMounts(base = '/'): ViewerMount[] {
  if (!base.startsWith('/') || !base.endsWith('/')) throw new Error(`viewer base "${base}" must start and end with "/"`);
  const novnc = novncRoot();
  return [
    { prefix: `${base}novnc/core`, dir: path.join(novnc, 'core') },
    { prefix: `${base}novnc/vendor`, dir: path.join(novnc, 'vendor') },
    { prefix: base === '/' ? '/' : base.slice(0, -1), dir: viewerRoot },
  ];
}
