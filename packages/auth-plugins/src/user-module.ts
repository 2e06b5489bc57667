import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidOptionError } from '@tsockify/core';
import { errorMessage } from './source.js';

/**
 * True when a plugin name is a module to load rather than a built-in class name: a path
 * (`./x.js`, `../x.mjs`, `/abs/x.js`, `C:\x.js`), a file name ending in .js/.mjs/.cjs, or an
 * npm package name (lowercase, maybe `@scope/`). A bare capitalised word is a class name.
 */
export function isModuleSpecifier(name: string): boolean {
  if (/^(\.{1,2}[/\\]|\/|[A-Za-z]:[/\\]|file:)/.test(name)) return true;
  if (/\.(m|c)?js(#.*)?$/.test(name)) return true;
  return /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/[\w.-]+)*(#[\w$]+)?$/.test(name) && !/[A-Z]/.test(name.split('#')[0]!);
}

/**
 * Import a user's plugin module. `spec` is a path (resolved against `cwd`) or a package name
 * (resolved from `cwd`'s node_modules, as the user would expect, not from tsockify's). A
 * `#Name` suffix picks a named export.
 */
export async function importUserModule(spec: string, cwd: string, kind: 'token' | 'auth'): Promise<{ module: Record<string, unknown>; exportName?: string }> {
  const hash = spec.lastIndexOf('#');
  const exportName = hash > 0 ? spec.slice(hash + 1) : undefined;
  const target = hash > 0 ? spec.slice(0, hash) : spec;
  let url: string;
  if (target.startsWith('file:')) url = target;
  else if (/^(\.{1,2}[/\\]|\/|[A-Za-z]:[/\\])/.test(target) || /\.(m|c)?js$/.test(target)) {
    url = pathToFileURL(path.resolve(cwd, target)).href;
  } else {
    try {
      url = pathToFileURL(createRequire(path.join(cwd, 'noop.js')).resolve(target)).href;
    } catch {
      url = target; // an ESM-only package without a "require" export: let import() resolve it.
    }
  }
  try {
    const module = (await import(url)) as Record<string, unknown>;
    return exportName === undefined ? { module } : { module, exportName };
  } catch (err) {
    throw new InvalidOptionError(`cannot load ${kind} plugin module "${spec}": ${errorMessage(err)}`);
  }
}

/** True for an ES class (called with `new`), false for a plain factory function. */
export function isClass(fn: unknown): fn is new (...args: unknown[]) => unknown {
  return typeof fn === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(fn));
}
