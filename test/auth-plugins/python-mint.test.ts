import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { SignedToken, generateKey, formatKeyLine, verifyToken, parseKeyFile } from '../../packages/auth-plugins/src/index.js';
import { repoRoot } from '../helpers/proc.js';
import { makeContext } from './context.js';
import { tempDir } from './tmp.js';

const exec = promisify(execFile);

/** The Python block of docs/tokens.md that defines mint(), exactly as the docs show it. */
async function snippetFromDocs(): Promise<string> {
  const md = await readFile(path.join(repoRoot, 'docs/tokens.md'), 'utf8');
  const blocks = [...md.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const snippet = blocks.find((b) => b.includes('def mint('));
  if (!snippet) throw new Error('docs/tokens.md has no ```python block defining mint()');
  return snippet;
}

describe('the Python minting snippet in docs/tokens.md', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let script: string;
  let snippet: string;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    snippet = await snippetFromDocs();
    script = path.join(dir, 'mint.py');
    // The snippet as is, then a driver that calls it with arguments from the command line.
    await writeFile(script, `${snippet}\nimport sys\nprint(mint(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])))\n`);
  });
  after(async () => cleanup());

  it('is about 20 lines and imports only the standard library', () => {
    const lines = snippet.trim().split('\n');
    expect(lines.length).to.be.within(15, 25);
    expect(lines[0]).to.equal('import base64, hashlib, hmac, json, secrets, time');
    expect(snippet).to.not.match(/^\s*(from|import) (?!base64|hashlib|hmac|json|secrets|time)/m);
  });

  it('mints a token that python3 signs and the SignedToken plugin accepts, with every claim', async () => {
    const key = generateKey('py-1', 'HS256');
    const keys = path.join(dir, 'keys');
    await writeFile(keys, `${formatKeyLine(key)}\n`);
    const { stdout } = await exec('python3', [script, formatKeyLine(key), 'fd00::5', '5901', 'élodie', 'i-42', '120']);
    const token = stdout.trim();
    expect(token).to.match(/^v1\.py-1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    const plugin = await SignedToken.fromSource(`${keys}:3600:once`);
    try {
      const target = await plugin.lookup(token, makeContext({ token }));
      expect(target).to.deep.include({ host: 'fd00::5', port: 5901 });
      expect(target.meta).to.deep.include({ sub: 'élodie', iid: 'i-42', kid: 'py-1' });
      expect(target.meta!['jti']).to.match(/^[A-Za-z0-9_-]{22}$/);
      expect(target.expiresAt! - Date.now()).to.be.within(115_000, 120_000);
    } finally {
      await plugin.close();
    }
  });

  it('fails verification when python signs with another secret', async () => {
    const key = generateKey('py-1', 'HS256');
    const other = generateKey('py-1', 'HS256');
    const { stdout } = await exec('python3', [script, formatKeyLine(other), '10.0.0.5', '5901', 'bob', 'i-1', '60']);
    expect(() => verifyToken(stdout.trim(), parseKeyFile(formatKeyLine(key)).keys)).to.throw(/token signature invalid/);
  });
});
