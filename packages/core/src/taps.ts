import type { Logger } from './logger.js';
import type { ResolvedOptions } from './options.js';
import type { SessionTaps } from './relay.js';
import { SessionRecorder } from './record.js';

/**
 * Build the per-session observers asked for by `record`. An unwritable record path does not
 * refuse the session: the desktop matters more than its recording. It is logged once per
 * session with the path and the cause, and the session runs unrecorded.
 */
export async function openTaps(options: ResolvedOptions, n: number, log: Logger): Promise<SessionTaps | undefined> {
  let recorder: SessionRecorder | undefined;
  if (options.record !== undefined) {
    try {
      recorder = await SessionRecorder.open(options.record, n, { logger: log });
    } catch (err) {
      log.error({ err: (err as Error).message }, 'recording disabled for this session');
    }
  }
  if (!recorder) return undefined;
  const r = recorder;
  return {
    fromClient: (data) => r.fromClient(data),
    fromTarget: (data) => r.fromTarget(data),
    close: () => { void r.close(); },
  };
}
