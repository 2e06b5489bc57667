/**
 * systemd socket activation (sd_listen_fds(3)): systemd opens the listening socket, starts
 * tsockify with it as fd 3 and says so in LISTEN_FDS / LISTEN_PID. No flag is needed; a
 * `.socket` unit is enough. websockify has no such support (only `--inetd`, fd 0).
 */

/** First passed fd, SD_LISTEN_FDS_START in sd-daemon.h. */
const SD_LISTEN_FDS_START = 3;

/**
 * The inherited listening fd, or undefined when this process was not socket-activated.
 * LISTEN_PID must name this process (as sd_listen_fds checks): the variables are inherited
 * by children, and a child must not mistake its parent's sockets for its own. So start
 * tsockify with `exec` (or directly), not from a shell that stays in between.
 */
export function systemdListenFd(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const fds = Number(env.LISTEN_FDS);
  if (!Number.isInteger(fds) || fds < 1) return undefined;
  if (Number(env.LISTEN_PID) !== pid) return undefined;
  return SD_LISTEN_FDS_START;
}

/** How many fds systemd passed (only the first is used; more are reported in a warning). */
export function systemdFdCount(env: NodeJS.ProcessEnv): number {
  const fds = Number(env.LISTEN_FDS);
  return Number.isInteger(fds) && fds > 0 ? fds : 0;
}

/** Like sd_listen_fds(unset_environment=1): keep the wrapped command from seeing our sockets. */
export function forgetActivationEnv(env: NodeJS.ProcessEnv): void {
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
}
