import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { InvalidOptionError } from './errors.js';
import type { Logger } from './logger.js';
import { mimeType } from './mime.js';
import type { WebOptions } from './options.js';

/**
 * Static files for `--web DIR` (noVNC on the same port as the WebSocket).
 *
 * Safety model: the request path is split on `/` BEFORE percent-decoding, each segment is
 * decoded exactly once, and a decoded segment that is `..` or holds `/`, `\` or NUL is refused.
 * So `%2f`, `%5c` and `%2e%2e` can never add a path level, and `%252e` stays the literal name
 * `%2e`. The joined path is then resolved with realpath and must still lie inside the folder's
 * own realpath, which catches symlinks pointing out. The file is opened with O_NOFOLLOW and
 * checked with fstat to be a regular file, so a FIFO or device never blocks or leaks.
 *
 * Refusals answer 404, never 403: a 403 for "exists but outside" would tell a prober which
 * paths exist. 400 is kept for requests that are malformed whatever the disk holds (NUL,
 * broken percent-encoding, a request target that is not a path).
 */

/** A folder served under a URL prefix; the root folder has the empty prefix. */
interface Folder {
  /** Decoded path segments of the prefix (`/novnc/` → `['novnc']`). */
  prefix: string[];
  /** The folder's realpath, taken once at startup. */
  real: string;
  isRoot: boolean;
}

interface ParsedTarget {
  /** Decoded segments with empty and `.` segments dropped. */
  segments: string[];
  /** The raw path ends with `/` (a directory was asked for as a directory). */
  trailingSlash: boolean;
  /** The last raw segment, decoded; what a directory redirect appends `/` to. */
  last: string;
  /** The raw query string without `?`, or '' (kept on redirects, never logged). */
  query: string;
  /** The raw path without query, for logs. */
  rawPath: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0) | (fs.constants.O_NONBLOCK ?? 0);
const BASE_HEADERS = { 'X-Content-Type-Options': 'nosniff' } as const;

/**
 * Build the request handler for static files. Folders are checked when this is called: a
 * missing `root` or mount folder throws an `InvalidOptionError` at startup. The handler
 * expects GET or HEAD (others get 405) and never throws.
 */
export function createWebHandler(web: WebOptions, log: Logger): Handler {
  const folders = resolveFolders(web);
  const index = web.index === undefined ? undefined : checkIndex(web.index);
  const fileOnly = web.fileOnly ?? false;

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, 'Method Not Allowed', { Allow: 'GET, HEAD' });
      return;
    }
    const target = parseTarget(req.url ?? '');
    if (typeof target === 'number') {
      sendText(res, target, target === 400 ? 'Bad Request' : 'Not Found');
      return;
    }
    const match = matchFolder(folders, target.segments);
    if (!match) return notFound(res);
    const { folder, rel } = match;
    const real = await realInside(path.join(folder.real, ...rel), folder.real);
    if (real === null) return notFound(res);
    if (real === escaped) {
      log.warn({ path: target.rawPath }, 'web request resolves outside the served folder; refused');
      return notFound(res);
    }
    const st = await fsp.stat(real).catch(() => null);
    if (st === null) return notFound(res); // removed since the realpath: a race, not a fault
    if (!st.isDirectory()) {
      // Python's http.server also gives 404 for `file.html/`.
      if (target.trailingSlash) return notFound(res);
      await sendFile(req, res, real, rel.at(-1) ?? '');
      return;
    }
    if (!target.trailingSlash) return redirectToDirectory(res, target);
    const candidates = ['index.html'];
    if (index !== undefined && folder.isRoot && rel.length === 0) candidates.push(index);
    for (const name of candidates) {
      const file = await realInside(path.join(real, name), folder.real);
      if (file !== null && file !== escaped && (await sendFile(req, res, file, name, true))) return;
    }
    if (fileOnly) return notFound(res);
    return sendListing(req, res, real, target.segments);
  }

  /** Serve a regular file; false (nothing sent) when `quiet` and it is not one. */
  async function sendFile(req: IncomingMessage, res: ServerResponse, file: string, name: string, quiet = false): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await fsp.open(file, OPEN_FLAGS);
    } catch {
      if (!quiet) notFound(res);
      return false;
    }
    let streaming = false;
    try {
      // fstat on the open handle, not stat on the name: what we describe is what we send.
      const st = await handle.stat();
      if (!st.isFile()) {
        if (!quiet) notFound(res);
        return false;
      }
      const etag = `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
      const headers = {
        ...BASE_HEADERS,
        ETag: etag,
        'Last-Modified': st.mtime.toUTCString(),
        'Cache-Control': 'no-cache',
      };
      if (isNotModified(req, etag, st.mtimeMs)) {
        res.writeHead(304, headers).end();
        return true;
      }
      res.writeHead(200, { ...headers, 'Content-Type': mimeType(name), 'Content-Length': st.size });
      if (req.method === 'HEAD' || st.size === 0) {
        res.end();
        return true;
      }
      // `end` caps the read at the size announced in Content-Length even if the file grows.
      const stream = handle.createReadStream({ start: 0, end: st.size - 1 });
      streaming = true;
      // pipeline destroys the file stream (closing the fd) when `res` closes early, e.g. the
      // client disconnects mid-file, and destroys `res` when the read fails after the headers.
      pipeline(stream, res, (err) => {
        if (err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
          log.warn({ err, path: file }, 'web file read failed');
        }
      });
      return true;
    } finally {
      if (!streaming) await handle.close().catch(() => undefined);
    }
  }

  return (req, res) => {
    serve(req, res).catch((err: unknown) => {
      log.error({ err }, 'web request failed');
      if (!res.headersSent) sendText(res, 500, 'Internal Server Error');
      else res.destroy();
    });
  };
}

/** Marker returned by `realInside` for a path that exists but resolves outside the folder. */
const escaped = Symbol('escaped');

async function realInside(candidate: string, base: string): Promise<string | null | typeof escaped> {
  let real: string;
  try {
    real = await fsp.realpath(candidate);
  } catch {
    return null; // ENOENT, ENOTDIR, ELOOP, EACCES, ENAMETOOLONG: all "not found" to the client
  }
  const prefix = base.endsWith(path.sep) ? base : base + path.sep;
  return real === base || real.startsWith(prefix) ? real : escaped;
}

/**
 * Split, decode and check the request target. Returns a status (400 or 404) to refuse with.
 * Origin-form (`/path?q`) and absolute-form (`http://host/path`, RFC 9112 3.2.2) are taken.
 */
export function parseTarget(url: string): ParsedTarget | 400 | 404 {
  let target = url;
  if (!target.startsWith('/')) {
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
    if (!m) return 400;
    target = target.slice(m[0].length);
    if (!target.startsWith('/')) target = `/${target}`;
  }
  const cut = target.search(/[?#]/);
  const rawPath = cut === -1 ? target : target.slice(0, cut);
  let query = '';
  if (cut !== -1 && target[cut] === '?') {
    const hash = target.indexOf('#', cut);
    query = target.slice(cut + 1, hash === -1 ? undefined : hash);
  }
  const segments: string[] = [];
  let last = '';
  for (const raw of rawPath.split('/')) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return 400;
    }
    if (seg.includes('\0')) return 400;
    last = seg;
    if (seg === '' || seg === '.') continue;
    if (seg === '..' || seg.includes('/') || seg.includes('\\')) return 404;
    segments.push(seg);
  }
  return { segments, trailingSlash: rawPath.endsWith('/'), last, query, rawPath };
}

/** Longest prefix first; `folders` is sorted that way at startup. */
function matchFolder(folders: Folder[], segments: string[]): { folder: Folder; rel: string[] } | undefined {
  for (const folder of folders) {
    if (folder.prefix.length > segments.length) continue;
    if (folder.prefix.every((p, i) => p === segments[i])) {
      return { folder, rel: segments.slice(folder.prefix.length) };
    }
  }
  return undefined;
}

/**
 * 301 to the directory with a trailing slash. The Location is RELATIVE (`./name/`): it is
 * resolved against the URL the browser asked for, so it can never name another host. Python's
 * http.server echoed the path, and `//evil.com/..` came back as `Location: //evil.com/../`,
 * a scheme-relative URL to evil.com (CVE-2021-28861, inherited by websockify). The name is
 * percent-encoded, so neither `/`, `\` nor a `scheme:` can appear in it, and relative links
 * also survive a reverse proxy that mounts tsockify under a sub-path.
 */
function redirectToDirectory(res: ServerResponse, target: ParsedTarget): void {
  let location = target.last === '.' ? './' : `./${encodeURIComponent(target.last)}/`;
  // Keep the query (noVNC's `?path=...`) when it is plain printable ASCII, as browsers send it.
  if (target.query !== '' && /^[\x21-\x7e]+$/.test(target.query)) location += `?${target.query}`;
  res.writeHead(301, { ...BASE_HEADERS, Location: location, 'Content-Length': 0 }).end();
}

/** RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since; ETags compare weakly. */
function isNotModified(req: IncomingMessage, etag: string, mtimeMs: number): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) {
    if (inm.trim() === '*') return true;
    const opaque = (tag: string): string => tag.trim().replace(/^W\//, '');
    return inm.split(',').some((tag) => opaque(tag) === opaque(etag));
  }
  const ims = req.headers['if-modified-since'];
  if (ims === undefined) return false;
  const since = Date.parse(ims);
  // HTTP dates have whole seconds; compare at that precision.
  return !Number.isNaN(since) && Math.floor(mtimeMs / 1000) * 1000 <= since;
}

async function sendListing(req: IncomingMessage, res: ServerResponse, dir: string, segments: string[]): Promise<void> {
  let entries: fs.Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return notFound(res);
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const title = escapeHtml(`Directory listing for /${segments.map((s) => `${s}/`).join('')}`);
  const rows: string[] = [];
  for (const e of entries) {
    const slash = e.isDirectory() ? '/' : '';
    let href: string;
    try {
      href = `./${encodeURIComponent(e.name)}${slash}`;
    } catch {
      continue; // a name that is not well-formed Unicode cannot be linked to
    }
    rows.push(`<li><a href="${escapeHtml(href)}">${escapeHtml(e.name + slash)}</a></li>`);
  }
  const body = Buffer.from(
    `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title}</title></head>\n` +
      `<body><h1>${title}</h1><hr><ul>\n${rows.join('\n')}\n</ul><hr></body></html>\n`,
  );
  res.writeHead(200, {
    ...BASE_HEADERS,
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-cache',
    // The page only holds links: no script may ever run on it, whatever a file name says.
    'Content-Security-Policy': "default-src 'none'",
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  const body = `${status} ${text}\n`;
  res.writeHead(status, {
    ...BASE_HEADERS,
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

function notFound(res: ServerResponse): void {
  sendText(res, 404, 'Not Found');
}

function realDirectory(what: string, dir: string): string {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch (err) {
    throw new InvalidOptionError(`invalid ${what} "${dir}": ${(err as Error).message}; expected an existing directory`);
  }
  if (!fs.statSync(real).isDirectory()) {
    throw new InvalidOptionError(`invalid ${what} "${dir}": not a directory; expected an existing directory`);
  }
  return real;
}

function resolveFolders(web: WebOptions): Folder[] {
  const folders: Folder[] = [];
  for (const { prefix, dir } of web.mounts ?? []) {
    const segs = prefix.split('/').filter((s) => s !== '');
    if (!prefix.startsWith('/') || segs.some((s) => s === '.' || s === '..' || s.includes('\\'))) {
      throw new InvalidOptionError(`invalid web mount prefix "${prefix}": expected an absolute URL path like /novnc/`);
    }
    folders.push({ prefix: segs, real: realDirectory(`web mount folder for ${prefix}`, dir), isRoot: false });
  }
  // Stable sort: longest prefix first, mounts before an equally long root.
  folders.sort((a, b) => b.prefix.length - a.prefix.length);
  if (web.root !== undefined) folders.push({ prefix: [], real: realDirectory('web root', web.root), isRoot: true });
  return folders;
}

function checkIndex(index: string): string {
  const segs = index.split(/[\\/]/);
  if (index === '' || path.isAbsolute(index) || segs.includes('..') || index.includes('\0')) {
    throw new InvalidOptionError(`invalid web index "${index}": expected a file name inside the web root, like vnc.html`);
  }
  return index;
}
