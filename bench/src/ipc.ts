/**
 * The wire between the orchestrator and its helper processes (target, client): one request,
 * one answer, matched by id, each call bounded in time.
 */
import type { ChildProcess } from 'node:child_process';

export interface Request {
  id: number;
  op: string;
  args: unknown;
}

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** The first message a helper sends once it is ready. */
export interface Ready {
  ready: true;
  [k: string]: unknown;
}

/** Calls into a helper process over its IPC channel. */
export class Rpc {
  private next = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  private readonly child: ChildProcess;
  private readyValue: Promise<Ready>;

  constructor(child: ChildProcess, name: string) {
    this.child = child;
    this.readyValue = new Promise((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null): void => reject(new Error(`${name} exited (${code ?? signal}) before it was ready`));
      child.once('exit', onExit);
      const onMessage = (m: unknown): void => {
        if (m && typeof m === 'object' && (m as Ready).ready === true) {
          child.removeListener('message', onMessage);
          child.removeListener('exit', onExit);
          resolve(m as Ready);
        }
      };
      child.on('message', onMessage);
    });
    child.on('message', (m: unknown) => {
      const r = m as Reply;
      if (!r || typeof r !== 'object' || typeof r.id !== 'number') return;
      const w = this.waiting.get(r.id);
      if (!w) return;
      this.waiting.delete(r.id);
      clearTimeout(w.timer);
      if (r.ok) w.resolve(r.result);
      else w.reject(new Error(`${name}: ${r.error}`));
    });
    child.on('exit', (code, signal) => {
      for (const [id, w] of this.waiting) {
        clearTimeout(w.timer);
        w.reject(new Error(`${name} exited (${code ?? signal}) during call ${id}`));
      }
      this.waiting.clear();
    });
  }

  ready(timeoutMs = 15_000): Promise<Ready> {
    return withTimeout(this.readyValue, timeoutMs, 'helper did not become ready');
  }

  call<T>(op: string, args: unknown, timeoutMs: number): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${op} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ id, op, args } satisfies Request);
    });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e as Error); });
  });
}

/** Serve requests in a helper: each op handler returns (or resolves to) a JSON-able result. */
export function serve(handlers: Record<string, (args: never) => unknown>, ready: Record<string, unknown>): void {
  process.on('message', (m: unknown) => {
    const req = m as Request;
    if (!req || typeof req !== 'object' || typeof req.id !== 'number') return;
    const h = handlers[req.op];
    if (!h) {
      process.send!({ id: req.id, ok: false, error: `unknown op ${req.op}` } satisfies Reply);
      return;
    }
    Promise.resolve()
      .then(() => h(req.args as never))
      .then(
        (result) => process.send!({ id: req.id, ok: true, result } satisfies Reply),
        (err: unknown) => process.send!({ id: req.id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) } satisfies Reply),
      );
  });
  // The orchestrator going away ends the helper: nothing is left behind.
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready: true, ...ready });
}
