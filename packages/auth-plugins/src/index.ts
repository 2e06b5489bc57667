export { createTokenPlugin, createAuthPlugin, TOKEN_PLUGIN_NAMES, AUTH_PLUGIN_NAMES } from './registry.js';
export type { CreatePluginOptions, CreateTokenPluginOptions, TokenPluginName, AuthPluginName } from './registry.js';

export { TokenFile, ReadOnlyTokenFile, TokenFileStore } from './token-file.js';
export type { TokenFileOptions, SourceOptions } from './token-file.js';
export { parseTokenFile } from './token-file-format.js';
export { TokenFileName } from './token-file-name.js';
export type { TokenFileNameOptions } from './token-file-name.js';
export { BaseTokenAPI, JSONTokenApi } from './token-api.js';
export type { TokenApiOptions, TokenApiSettings, TokenApiResponse } from './token-api.js';
export { JWTTokenApi } from './jwt-token.js';
export type { JwtTokenOptions, JwtTokenSettings } from './jwt-token.js';
export { parseJwtKey } from './jwt-key.js';
export type { JwtKeys, SecretEncoding } from './jwt-key.js';
export { TokenRedis, parseRedisValue } from './token-redis.js';
export type { TokenRedisOptions, TokenRedisSettings } from './token-redis.js';
export { parseRedisSource, splitSourceFields } from './redis-source.js';
export type { RedisSource } from './redis-source.js';
export { UnixDomainSocketDirectory } from './unix-socket-directory.js';
export type { UnixDomainSocketDirectoryOptions } from './unix-socket-directory.js';
export { parseTargetText } from './target-text.js';

export { BasicHTTPAuth } from './basic-auth.js';
export type { BasicHTTPAuthOptions } from './basic-auth.js';
export { ExpectOrigin, InvalidOriginError } from './expect-origin.js';
export type { ExpectOriginOptions } from './expect-origin.js';
export { ClientCertCNAuth } from './client-cert-auth.js';
export type { ClientCertCNAuthOptions } from './client-cert-auth.js';
export { chainAuthPlugins } from './chain.js';
