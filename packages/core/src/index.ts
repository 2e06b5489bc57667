export {
  TsockifyError,
  InvalidOptionError,
  BadRequestError,
  MethodNotAllowedError,
  SubprotocolError,
  TokenMissingError,
  TokenInvalidError,
  AuthenticationError,
  PluginUnavailableError,
  TargetDeniedError,
  TargetUnreachableError,
  TargetTimeoutError,
  TargetResetError,
  LimitError,
  RecordError,
  ListenError,
  toHttpStatus,
  errorCode,
  toCloseCode,
} from './errors.js';
export type { TsockifyErrorCode } from './errors.js';
export { staticTarget, isUnixTarget, formatTarget } from './plugins.js';
export type { Target, TcpTarget, UnixTarget, TokenPlugin, AuthPlugin, RequestContext } from './plugins.js';
export { silentLogger } from './logger.js';
export type { Logger, LogFn } from './logger.js';
export { parseHostPort, resolveOptions, MAX_FRAME_PAYLOAD } from './options.js';
export type {
  TsockifyOptions,
  ResolvedOptions,
  ListenOptions,
  TlsOptions,
  TargetTlsOptions,
  WebOptions,
} from './options.js';
export { TsockifyServer, createServer, removeStaleSocket } from './server.js';
export type { ServerEventMap, RejectInfo } from './server.js';
export type { SessionInfo, SessionCloseInfo, CloseInitiator } from './relay.js';
export { dialTarget } from './target.js';
export { primeAllocator, allocatorPrimingSkipped } from './allocator.js';
export type { DialOptions } from './target.js';
export { createWebHandler } from './web.js';
export { SessionRecorder, encodeRecordFrame, encodeRecordLine } from './record.js';
export type { RecordDirection, SessionRecorderOptions } from './record.js';
export { TRAFFIC_LEGEND, createTrafficTracer } from './traffic.js';
export type { TrafficTracer } from './traffic.js';
export type { SessionTaps } from './relay.js';
export { tokenHash } from './token-hash.js';
export type { CookieExchangeOptions } from './cookie.js';
export { TargetPolicyError, parseAllowRule, ALLOW_TARGET_GRAMMAR } from './allow-list.js';
export type { AllowRule } from './allow-list.js';
