import type { AuthPlugin, Logger, TokenPlugin } from '@tsockify/core';
import { InvalidOptionError } from '@tsockify/core';
import { AtmosphereToken, type AtmosphereTokenSettings } from './atmosphere-token.js';
import { BasicHTTPAuth } from './basic-auth.js';
import { ClientCertCNAuth } from './client-cert-auth.js';
import { ExpectOrigin } from './expect-origin.js';
import { JWTTokenApi, type JwtTokenSettings } from './jwt-token.js';
import { SignedToken, type SignedTokenSettings } from './signed-token-plugin.js';
import { BaseTokenAPI, JSONTokenApi, type TokenApiSettings } from './token-api.js';
import { ReadOnlyTokenFile, TokenFile } from './token-file.js';
import { TokenFileName } from './token-file-name.js';
import { TokenRedis, type TokenRedisSettings } from './token-redis.js';
import { UnixDomainSocketDirectory } from './unix-socket-directory.js';
import { importUserModule, isClass, isModuleSpecifier } from './user-module.js';

/** The token plugins built in: websockify's, by class name, `AtmosphereToken` and tsockify's own `SignedToken`. */
export const TOKEN_PLUGIN_NAMES = [
  'TokenFile',
  'ReadOnlyTokenFile',
  'TokenFileName',
  'BaseTokenAPI',
  'JSONTokenApi',
  'JWTTokenApi',
  'TokenRedis',
  'UnixDomainSocketDirectory',
  'AtmosphereToken',
  'SignedToken',
] as const;

/** The auth plugins built in, by websockify class name. */
export const AUTH_PLUGIN_NAMES = ['BasicHTTPAuth', 'ExpectOrigin', 'ClientCertCNAuth'] as const;

export type TokenPluginName = (typeof TOKEN_PLUGIN_NAMES)[number];
export type AuthPluginName = (typeof AUTH_PLUGIN_NAMES)[number];

/** Everything a plugin may need besides its source string. */
export interface CreatePluginOptions {
  /** Passed to the plugin for its own log lines (syntax errors, backend up/down). */
  logger?: Logger;
  /** Where a user plugin's relative path or package name is resolved from. Default `process.cwd()`. */
  cwd?: string;
}

export interface CreateTokenPluginOptions extends CreatePluginOptions {
  /** For `BaseTokenAPI` and `JSONTokenApi`. */
  api?: TokenApiSettings;
  /** For `JWTTokenApi`. */
  jwt?: JwtTokenSettings;
  /** For `TokenRedis`. */
  redis?: TokenRedisSettings;
  /** For `AtmosphereToken`. */
  atmosphere?: AtmosphereTokenSettings;
  /** For `SignedToken`. */
  signed?: SignedTokenSettings;
}

type TokenFactory = (source: string | undefined, opts: CreateTokenPluginOptions) => Promise<TokenPlugin>;

const tokenFactories: Record<TokenPluginName, TokenFactory> = {
  TokenFile: (s, o) => TokenFile.fromSource(s, { logger: o.logger }),
  ReadOnlyTokenFile: (s, o) => ReadOnlyTokenFile.fromSource(s, { logger: o.logger }),
  TokenFileName: (s, o) => TokenFileName.fromSource(s, { logger: o.logger }),
  BaseTokenAPI: (s, o) => BaseTokenAPI.fromSource(s, { ...o.api, logger: o.logger }),
  JSONTokenApi: (s, o) => JSONTokenApi.fromSource(s, { ...o.api, logger: o.logger }),
  JWTTokenApi: (s, o) => JWTTokenApi.fromSource(s, { ...o.jwt, logger: o.logger }),
  TokenRedis: (s, o) => TokenRedis.fromSource(s, { ...o.redis, logger: o.logger }),
  UnixDomainSocketDirectory: (s) => UnixDomainSocketDirectory.fromSource(s),
  AtmosphereToken: (s, o) => AtmosphereToken.fromSource(s, { ...o.atmosphere, logger: o.logger }),
  SignedToken: (s, o) => SignedToken.fromSource(s, { ...o.signed, logger: o.logger }),
};

const authFactories: Record<AuthPluginName, (source: string | undefined) => AuthPlugin> = {
  BasicHTTPAuth: (s) => BasicHTTPAuth.fromSource(s),
  ExpectOrigin: (s) => ExpectOrigin.fromSource(s),
  ClientCertCNAuth: (s) => ClientCertCNAuth.fromSource(s),
};

/**
 * Build the token plugin `--token-plugin NAME --token-source SOURCE` asks for.
 *
 * `name` is a built-in class name (`TokenFile`, also websockify's dotted
 * `websockify.token_plugins.TokenFile`), or a user plugin module: a path (`./my-plugin.js`,
 * `/abs/plugin.mjs`) or an npm package name, optionally `#ExportName`. The module provides,
 * in order of preference:
 * - `export function createTokenPlugin(source, { logger })` returning (a promise of) a plugin;
 * - the named export picked by `#ExportName`, or the default export: a class constructed as
 *   `new Class(source, { logger })`, a factory function called the same way, or a plugin object;
 * - or it is itself a plugin: `export function lookup(token, ctx)`.
 *
 * A bad source, an unknown name or a module that yields no `lookup` method throws an
 * `InvalidOptionError` that says what is expected, at startup.
 */
export async function createTokenPlugin(name: string, source: string | undefined, opts: CreateTokenPluginOptions = {}): Promise<TokenPlugin> {
  const builtin = builtinName(name, 'websockify.token_plugins.', TOKEN_PLUGIN_NAMES, 'token');
  if (builtin !== undefined) return tokenFactories[builtin](source, opts);
  const plugin = await loadUserPlugin(name, source, opts, 'token', 'createTokenPlugin', 'lookup');
  return plugin as TokenPlugin;
}

/**
 * Build the auth plugin `--auth-plugin NAME --auth-source SOURCE` asks for: a built-in class
 * name (`BasicHTTPAuth`, `websockify.auth_plugins.BasicHTTPAuth`) or a user module exporting
 * `createAuthPlugin(source, { logger })`, a class, a factory or a plugin object, as for
 * `createTokenPlugin` (the method is `authenticate(ctx)`). Chain several with
 * `chainAuthPlugins`.
 */
export async function createAuthPlugin(name: string, source: string | undefined, opts: CreatePluginOptions = {}): Promise<AuthPlugin> {
  const builtin = builtinName(name, 'websockify.auth_plugins.', AUTH_PLUGIN_NAMES, 'auth');
  if (builtin !== undefined) return authFactories[builtin](source);
  const plugin = await loadUserPlugin(name, source, opts, 'auth', 'createAuthPlugin', 'authenticate');
  return plugin as AuthPlugin;
}

/** The built-in a name refers to, undefined for a module, or an error for an unknown class name. */
function builtinName<N extends string>(name: string, dotted: string, names: readonly N[], kind: 'token' | 'auth'): N | undefined {
  const bare = name.startsWith(dotted) ? name.slice(dotted.length) : name;
  if ((names as readonly string[]).includes(bare)) return bare as N;
  // A near miss of a built-in ("tokenfile") is a typo, not an npm package.
  const close = names.find((n) => n.toLowerCase() === bare.toLowerCase());
  if (!close && bare === name && isModuleSpecifier(name)) return undefined;
  throw new InvalidOptionError(
    `unknown --${kind}-plugin "${name}"${close ? ` (did you mean ${close}?)` : ''}: built-in ${kind} plugins are ${names.join(', ')}; ` +
      `a plugin of your own is a path (./my-plugin.js) or an npm package name`,
  );
}

async function loadUserPlugin(
  name: string,
  source: string | undefined,
  opts: CreatePluginOptions,
  kind: 'token' | 'auth',
  factoryName: string,
  method: string,
): Promise<unknown> {
  const { module, exportName } = await importUserModule(name, opts.cwd ?? process.cwd(), kind);
  const args = [source, { logger: opts.logger }];
  let candidate: unknown;
  if (exportName !== undefined) {
    if (!(exportName in module)) throw new InvalidOptionError(`${kind} plugin module "${name}" has no export "${exportName}"`);
    candidate = module[exportName];
  } else if (typeof module[factoryName] === 'function') {
    candidate = (module[factoryName] as (...a: unknown[]) => unknown)(...args);
  } else if (module['default'] !== undefined) {
    candidate = module['default'];
  } else {
    candidate = module;
  }
  if (isClass(candidate)) candidate = new candidate(...args);
  else if (typeof candidate === 'function') candidate = (candidate as (...a: unknown[]) => unknown)(...args);
  const plugin = await candidate;
  if (plugin === null || typeof plugin !== 'object' || typeof (plugin as Record<string, unknown>)[method] !== 'function') {
    throw new InvalidOptionError(
      `${kind} plugin module "${name}" gave no plugin: export ${factoryName}(source, options), a class or factory as default, ` +
        `or an object with a ${method}() method`,
    );
  }
  return plugin;
}
