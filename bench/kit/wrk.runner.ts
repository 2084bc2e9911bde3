import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface WrkOptions {
  threads: number;
  connections: number;
  durationS: number;
}

export interface WrkResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Answers other than 2xx or 3xx (a 503 from a health route that reads down). */
  non2xx: number;
  /** connect, read, write and timeout errors, summed. */
  socketErrors: number;
}

export const WRK_DEFAULTS: WrkOptions = { threads: 2, connections: 20, durationS: 10 };

/** Loads `url` with wrk (Debian package wrk) and returns its figures; --latency gives the percentiles. */
export async function runWrk(url: string, options: WrkOptions = WRK_DEFAULTS): Promise<WrkResult> {
  const args = [`-t${options.threads}`, `-c${options.connections}`, `-d${options.durationS}s`, '--latency', url];
  const { stdout } = await execFileAsync('wrk', args, { timeout: (options.durationS + 30) * 1_000, encoding: 'utf8' });
  return parseWrk(stdout);
}

/** wrk prints durations as 812.00us, 1.23ms, 2.00s or 1.00m. */
function duration(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!match) throw new Error(`unexpected wrk duration "${text}"`);
  const value = Number(match[1]);
  return { us: value / 1_000, ms: value, s: value * 1_000, m: value * 60_000 }[match[2] as 'us' | 'ms' | 's' | 'm'];
}

export function parseWrk(out: string): WrkResult {
  const percentile = (p: string) => {
    const match = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out);
    if (!match) throw new Error(`no ${p}% latency in wrk output:\n${out}`);
    return duration(match[1]!);
  };
  const requests = /(\d+) requests in/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const latency = /Latency\s+\S+\s+\S+\s+(\S+)/.exec(out);
  if (!requests || !rps) throw new Error(`cannot read wrk output:\n${out}`);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: Number(requests[1]),
    rps: Number(rps[1]),
    p50Ms: percentile('50'),
    p90Ms: percentile('90'),
    p99Ms: percentile('99'),
    maxMs: latency ? duration(latency[1]!) : Number.NaN,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  };
}
