/**
 * Errors the command reports before it serves anything. Each carries what is wrong (for
 * usage errors, websockify's own wording where websockify has one, so that scripts and
 * people who know websockify recognise it) and how to fix it. `main` prints them as
 * `tsockify: <what is wrong> (<how to fix>)` and exits with `exitCode`.
 */

export type CliErrorCode = 'TSOCK_CLI_USAGE' | 'TSOCK_CLI_STARTUP';

export class CliError extends Error {
  readonly code: CliErrorCode;
  /** How to fix it; printed in parentheses after the message. */
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(code: CliErrorCode, message: string, hint: string | undefined, exitCode: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.hint = hint;
    this.exitCode = exitCode;
  }
}

/** The command line is wrong. Exit code 2, as optparse's `parser.error` (and so websockify). */
export class UsageError extends CliError {
  constructor(message: string, hint?: string) {
    super('TSOCK_CLI_USAGE', message, hint, 2);
  }
}

/** The command line parsed but the configuration cannot start (a file is missing, the port is taken). Exit code 1. */
export class StartupError extends CliError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super('TSOCK_CLI_STARTUP', message, hint, 1, options);
  }
}

/** The one line printed on stderr for a failed start. */
export function formatCliError(err: CliError): string {
  return `tsockify: ${err.message}${err.hint ? ` (${err.hint})` : ''}`;
}
