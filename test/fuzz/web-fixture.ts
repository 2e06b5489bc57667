/**
 * A `--web` folder with traps around it, shared by the web path fuzzer and the web security
 * regressions: a secret file next to the root, a sibling folder whose name extends the root's
 * (`root` vs `root-sibling`, for prefix checks), symlinks pointing out, and a folder named
 * like a host (`evil.com`) so that `//evil.com` resolves to something.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** A file name that would run script if a directory listing pasted it into HTML unescaped. */
export const LISTING_TRAP = '"><img src=x onerror=alert(1)>.txt';

export interface WebFixture {
  base: string;
  root: string;
  /** A marker that appears only in files outside the root. */
  secret: string;
  /** Bodies of the regular files inside the root, by URL path. */
  inside: Map<string, string>;
  cleanup(): void;
}

export function makeWebFixture(): WebFixture {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-web-'));
  const secret = `OUTSIDE-SECRET-${randomBytes(8).toString('hex')}`;
  const root = path.join(base, 'root');
  fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
  fs.mkdirSync(path.join(root, 'evil.com'), { recursive: true });
  fs.mkdirSync(path.join(base, 'root-sibling'));
  fs.writeFileSync(path.join(base, 'outside-secret.txt'), secret);
  fs.writeFileSync(path.join(base, 'root-sibling', 'secret.txt'), secret);
  const inside = new Map<string, string>([
    ['/index.html', '<!doctype html><title>root index</title>'],
    ['/sub/file.txt', 'inside file'],
    ['/evil.com/index.html', 'a folder named like a host'],
  ]);
  for (const [p, body] of inside) fs.writeFileSync(path.join(root, p), body);
  // A folder to list, holding a file whose name is markup.
  fs.mkdirSync(path.join(root, 'listing'));
  fs.writeFileSync(path.join(root, 'listing', LISTING_TRAP), 'x');
  fs.symlinkSync('../outside-secret.txt', path.join(root, 'link-out'));
  fs.symlinkSync('..', path.join(root, 'dirlink-out'));
  fs.symlinkSync(path.join(base, 'root-sibling'), path.join(root, 'sibling-link'));
  return { base, root, secret, inside, cleanup: () => fs.rmSync(base, { recursive: true, force: true }) };
}

export interface WebAnswer {
  status: number | null;
  headers: Record<string, string>;
  body: Buffer;
}

/** Split a raw HTTP/1.1 answer (Connection: close) into status, headers and body. */
export function parseAnswer(data: Buffer): WebAnswer {
  const end = data.indexOf('\r\n\r\n');
  const headText = (end < 0 ? data : data.subarray(0, end)).toString('latin1');
  const lines = headText.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: m ? Number(m[1]) : null, headers, body: end < 0 ? Buffer.alloc(0) : data.subarray(end + 4) };
}
