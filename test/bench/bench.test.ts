import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchMain } from '../../bench/src/main.js';
import { metricDefs, runs, SUBJECTS } from '../../bench/src/metrics.js';

// The benchmark is a tool, not a test: this only checks that a tiny run starts, measures
// every scenario for every subject and writes its table and chart. No timing assertions.
describe('bench', () => {
  describe('--quick', () => {
    let dir: string;
    before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-bench-test-')); });
    after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

    it('measures every scenario for every subject and writes a table and a chart', async function () {
      this.timeout(90_000);
      const out = path.join(dir, 'benchmarks.md');
      const lines: string[] = [];
      const res = await benchMain(['--quick', '--idle', '20', '--idle-time', '5', '--out', out], (l) => lines.push(l));
      expect(res, 'benchMain returned nothing').to.not.equal(undefined);
      const { results } = res!;
      try {
        expect(results.notes, lines.join('\n')).to.deep.equal([]);
        for (const def of metricDefs(results.idleCounts)) {
          for (const subject of SUBJECTS) {
            if (!runs(subject, def.scenario) || (def.proxiesOnly && (subject === 'tcp' || subject === 'ws'))) continue;
            const v = results.values[def.id]?.[subject]?.[0];
            expect(v, `${def.id} for ${subject}\n${lines.join('\n')}`).to.be.a('number');
            // A PSS difference over 20 sessions is within one GC's noise and may come out
            // negative; every other figure is a count, a rate or a time.
            const ok = def.unit === 'KiB' ? Number.isFinite(v) : Number.isFinite(v) && v! > 0;
            expect(ok, `${def.id} for ${subject} = ${v}\n${lines.join('\n')}`).to.equal(true);
          }
        }
        const md = fs.readFileSync(out, 'utf8');
        expect(md).to.include('| figure | unit | tsockify | tsockify, 2 workers | websockify | raw TCP | ws→ws |');
        // The reference relays have their column and their sentences, with nothing left blank.
        expect(md).to.include('| tsockify ÷ ws relay |');
        expect(md).to.include('The ws relay, the least any WebSocket relay in Node does,');
        expect(md).to.not.match(/NaN|undefined/);
        expect(md).to.include('## Targets (issue 4)');
        expect(md).to.include('](benchmarks.svg)');
        const svg = fs.readFileSync(path.join(dir, 'benchmarks.svg'), 'utf8');
        expect(svg.startsWith('<svg')).to.equal(true);
        expect(svg).to.include('</svg>');
      } finally {
        fs.rmSync(results.workDir, { recursive: true, force: true });
      }
    });
  });
});
