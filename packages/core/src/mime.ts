import path from 'node:path';

/** The fallback type: browsers (with `nosniff`) download it rather than guess. */
export const DEFAULT_MIME_TYPE = 'application/octet-stream';

/**
 * Extension → media type for what noVNC and typical web apps ship. A fixed table rather than
 * the system's /etc/mime.types so that answers are the same on every host (Debian maps `.js`
 * to application/javascript, RFC 9239 says text/javascript).
 */
const TYPES: Readonly<Record<string, string>> = {
  html: 'text/html',
  htm: 'text/html',
  js: 'text/javascript',
  mjs: 'text/javascript',
  cjs: 'text/javascript',
  css: 'text/css',
  json: 'application/json',
  map: 'application/json',
  webmanifest: 'application/manifest+json',
  xml: 'application/xml',
  txt: 'text/plain',
  md: 'text/markdown',
  csv: 'text/csv',
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  ico: 'image/x-icon',
  bmp: 'image/bmp',
  wasm: 'application/wasm',
  woff: 'font/woff',
  woff2: 'font/woff2',
  ttf: 'font/ttf',
  otf: 'font/otf',
  mp3: 'audio/mpeg',
  oga: 'audio/ogg',
  ogg: 'audio/ogg',
  wav: 'audio/wav',
  mp4: 'video/mp4',
  webm: 'video/webm',
  pdf: 'application/pdf',
  zip: 'application/zip',
  gz: 'application/gzip',
};

/** Types that are text although not `text/*`: they get a charset too. */
const TEXTUAL = new Set(['application/json', 'application/manifest+json', 'application/xml', 'image/svg+xml']);

/**
 * The `Content-Type` value for a file name, by its extension (case-insensitive). Text types
 * carry `; charset=utf-8`; unknown extensions give `application/octet-stream`.
 */
export function mimeType(fileName: string): string {
  const ext = path.extname(fileName).slice(1).toLowerCase();
  const type = Object.hasOwn(TYPES, ext) ? TYPES[ext]! : DEFAULT_MIME_TYPE;
  return type.startsWith('text/') || TEXTUAL.has(type) ? `${type}; charset=utf-8` : type;
}
