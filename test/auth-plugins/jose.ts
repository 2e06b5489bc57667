import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type * as Jose from '../../packages/auth-plugins/node_modules/jose/dist/types/index.js';

export type { Jose };

/**
 * jose, the same copy @tsockify/auth-plugins depends on. The repository root does not depend
 * on jose, so a bare `import 'jose'` from test/ only resolves by accident (NODE_PATH under
 * `npx`, and not at all when mocha loads the files as ES modules).
 */
export async function loadJose(): Promise<typeof Jose> {
  const require = createRequire(new URL('../../packages/auth-plugins/package.json', import.meta.url));
  return (await import(pathToFileURL(require.resolve('jose')).href)) as typeof Jose;
}
