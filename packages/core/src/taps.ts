import type { Logger } from './logger.js';
import type { ResolvedOptions } from './options.js';
import type { SessionTaps } from './relay.js';
import { SessionRecorder } from './record.js';
import { createTrafficTracer, type TrafficTracer } from './traffic.js';

/**
 * Build the per-session observers asked for by `record` and `traffic`. An unwritable record path does not
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
  let tracer: TrafficTracer | undefined;
  if (options.traffic) {
    tracer = createTrafficTracer(options.traffic);
    // websockify prints the legend once per session, after dialling the target.
    tracer.legend();
  }
  if (!recorder && !tracer) return undefined;
  const r = recorder;
  const t = tracer;
  return {
    fromClient: (data) => { r?.fromClient(data); t?.clientReceive(); },
    fromTarget: (data) => { r?.fromTarget(data); t?.targetReceive(); },
    sentToTarget: t ? (complete) => t.targetSend(complete) : undefined,
    sentToClient: t ? (complete) => t.clientSend(complete) : undefined,
    close: () => { void r?.close(); t?.flush(); },
  };
}
