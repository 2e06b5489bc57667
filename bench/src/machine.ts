/** What the benchmark ran on, for the report. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  websockify: string;
  openFilesLimit: string;
  loadAverage: string;
}

function tryRun(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    return undefined;
  }
}

export function describeMachine(websockifyBin: string): Machine {
  const cpus = os.cpus();
  let cpu = cpus[0]?.model?.trim() ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1]!.trim();
  } catch { /* not Linux */ }
  const wsVersion = tryRun('dpkg-query', ['-W', '-f=${Version}', 'websockify'])
    ?? (fs.existsSync(websockifyBin) ? 'installed (version unknown)' : 'not installed');
  const limit = tryRun('/bin/bash', ['-c', 'echo "$(ulimit -Sn) soft / $(ulimit -Hn) hard"']) ?? 'unknown';
  return {
    cpu,
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    websockify: `Python websockify ${wsVersion} (${websockifyBin})`,
    openFilesLimit: limit,
    loadAverage: os.loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}
