export { main, version } from './main.js';
export type { MainIo } from './main.js';
export { parseArgs } from './args.js';
export type { CliOptions, ListenSpec, TargetSpec, WrapMode, SslVersion, ParseResult, ParseContext } from './args.js';
export { FLAGS, USAGE_LINES } from './flags.js';
export type { FlagSpec, FlagType, FlagGroup } from './flags.js';
export { helpText } from './help.js';
export { CliError, UsageError, StartupError, formatCliError } from './errors.js';
