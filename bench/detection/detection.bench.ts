import { setTimeout as sleep } from 'node:timers/promises';
import { createAdapter } from '../../lib/adapters/create-adapter.js';
import { reportToConsole } from '../../lib/core/user-callback.js';
import { systemClock } from '../../lib/core/clock.js';
import { ConnectionMonitor } from '../../lib/core/connection-monitor.js';
import { resolveMonitorOptions } from '../../lib/core/resolve-monitor-options.js';
import type { StateChangeEvent } from '../../lib/index.js';
import { ChaosProxy } from '../../test/kit/chaos.proxy.js';
import type { BenchSettings, GoalResult, SectionResult } from '../kit/bench-section.js';
import { markdownTable } from '../kit/markdown.table.js';
import { median, ms, now } from '../kit/stats.js';
import type { DetectionKind, FaultServer, MonitoredConnection, Noticed } from './detection-kind.interface.js';
import { faults, kickFault, type Fault } from './detection.faults.js';
import { DETECTION_KINDS } from './detection.kinds.js';

const SECTION = 'Detection and recovery';
/** The settings of the end-to-end tests: a 1 500 ms detection bound. */
const MONITOR_INPUT = {
  heartbeat: { intervalMs: 1_000, timeoutMs: 500, connectTimeoutMs: 1_000 },
  reconnect: { initialDelayMs: 200, maxDelayMs: 1_000, maxAttempts: Infinity },
};
const BOUND_MS = MONITOR_INPUT.heartbeat.intervalMs + MONITOR_INPUT.heartbeat.timeoutMs;
const GOAL_MARGIN_MS = 250;
/** Past this, a trial counts as not detected (or not recovered) and the harness moves on. */
const TRIAL_CAP_MS = 20_000;

interface TrialResult {
  kind: string;
  fault: string;
  /** Fault to `down`, ms; undefined when not detected within the cap. */
  downMs?: number;
  /** Fault cleared (or, for a one-off fault, the fault itself) to `up`, ms. */
  upMs?: number;
  reason?: string;
  error?: string;
}

interface RawResult {
  server: string;
  library: string;
  usage: string;
  fault: string;
  /** Per client: ms from fault to the library's own report, undefined when it said nothing within the cap. */
  delays: Array<number | undefined>;
  firstHow?: string;
  error?: string;
}

/** State transitions of one monitor, kept so a wait can also find one that already happened. */
class TransitionLog {
  private readonly entries: StateChangeEvent[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(monitor: ConnectionMonitor) {
    monitor.events$.subscribe((event) => {
      if (event.type !== 'state') return;
      this.entries.push(event);
      for (const wake of this.waiters) wake();
    });
  }

  async first(predicate: (event: StateChangeEvent) => boolean, withinMs: number): Promise<StateChangeEvent | undefined> {
    const deadline = now() + withinMs;
    for (;;) {
      const found = this.entries.find(predicate);
      if (found || now() >= deadline) return found;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(0, deadline - now()));
        this.waiters.add(wake);
      });
    }
  }
}

/** One trial: a fresh monitor, the fault at a random point of the heartbeat cycle, down, hold, clear, up. */
async function trial(kind: DetectionKind, server: FaultServer, fault: Fault): Promise<TrialResult> {
  const result: TrialResult = { kind: kind.label, fault: fault.name };
  const proxy = fault.viaProxy ? await ChaosProxy.start(server.host, server.port) : undefined;
  const endpoint = proxy ?? server;
  let monitored: MonitoredConnection | undefined;
  let monitor: ConnectionMonitor | undefined;
  let cleared = fault.clear === undefined;
  try {
    monitored = await kind.connection!(endpoint.host, endpoint.port);
    const { definition } = monitored;
    const options = resolveMonitorOptions(definition.name, MONITOR_INPUT);
    monitor = new ConnectionMonitor(definition.name, createAdapter(definition, options, { clock: systemClock, report: reportToConsole }), options);
    const log = new TransitionLog(monitor);
    monitor.start();
    if (!(await log.first((e) => e.to === 'up', TRIAL_CAP_MS))) throw new Error(`never connected: ${monitor.snapshot().reason}`);
    await sleep(Math.random() * MONITOR_INPUT.heartbeat.intervalMs);
    const injectedAt = now();
    // A kick that reached the clients after its command's start-up counts from then.
    const faultAt = (await fault.inject({ server, proxy })) ?? injectedAt;
    const down = await log.first((e) => e.to === 'down' && e.at >= injectedAt, TRIAL_CAP_MS);
    if (!down) return result;
    result.downMs = down.at - faultAt;
    result.reason = down.reason;
    await sleep(fault.holdMs);
    let clearedAt = faultAt;
    if (fault.clear) {
      await fault.clear({ server, proxy });
      cleared = true;
      clearedAt = now();
    }
    const up = await log.first((e) => e.to === 'up' && e.at > down.at, TRIAL_CAP_MS);
    if (up) result.upMs = up.at - clearedAt;
  } catch (error) {
    result.error = (error as Error).message;
  } finally {
    if (!cleared) await fault.clear?.({ server, proxy });
    await monitor?.close(2_000);
    await monitored?.dispose?.();
    await proxy?.close();
  }
  return result;
}

/**
 * The client libraries alone, with their defaults: every client of every (fault, library) pair is armed at
 * once on a server of its own, so ten trials of a 60 s cap take 60 s, beside the package's trials.
 */
function rawPhase(kind: DetectionKind, faultList: Fault[], settings: BenchSettings): { armed: Promise<void>; done: Promise<RawResult[]> } {
  let armedResolve!: () => void;
  const armed = new Promise<void>((resolve) => (armedResolve = resolve));
  // A kind whose raw baseline another kind of the same server runs: no server of its own to start (and kill).
  if (kind.raw.length === 0) return { armed: Promise.resolve(), done: Promise.resolve([]) };
  const done = (async (): Promise<RawResult[]> => {
    const results: RawResult[] = [];
    let server: FaultServer | undefined;
    try {
      server = await kind.startServer();
      const viaProxy = faultList.filter((f) => f.viaProxy);
      const setups = [];
      for (const fault of viaProxy) {
        for (const library of kind.raw) {
          const result: RawResult = { server: kind.server, library: library.name, usage: library.usage, fault: fault.name, delays: [] };
          results.push(result);
          for (let i = 0; i < settings.trials; i++) {
            const proxy = await ChaosProxy.start(server.host, server.port);
            setups.push({ fault, result, proxy, watch: await library.watch(proxy.host, proxy.port) });
          }
        }
      }
      armedResolve();
      await sleep(1_500); // every client has used its connection once
      const deadline = sleep(settings.rawCapMs).then(() => undefined);
      await Promise.all(
        setups.map(async ({ fault, result, proxy, watch }) => {
          const at = now();
          await fault.inject({ server: server!, proxy });
          const noticed = await Promise.race<Noticed | undefined>([watch.noticed, deadline]);
          result.delays.push(noticed && noticed.at - at);
          result.firstHow ??= noticed?.how;
        }),
      );
      await Promise.all(setups.map(async ({ proxy, watch }) => (await watch.close(), await proxy.close())));

      // A fault on the server itself (kill, a kick) hits every client of it at once: one round each.
      for (const fault of faultList.filter((f) => !f.viaProxy)) {
        const watches = [];
        for (const library of kind.raw) {
          const result: RawResult = { server: kind.server, library: library.name, usage: library.usage, fault: fault.name, delays: [] };
          results.push(result);
          for (let i = 0; i < settings.trials; i++) watches.push({ result, watch: await library.watch(server.host, server.port) });
        }
        await sleep(1_500);
        const injectedAt = now();
        const at = (await fault.inject({ server })) ?? injectedAt;
        const deadline = sleep(settings.rawCapMs).then(() => undefined);
        await Promise.all(
          watches.map(async ({ result, watch }) => {
            const noticed = await Promise.race<Noticed | undefined>([watch.noticed, deadline]);
            result.delays.push(noticed && noticed.at - at);
            result.firstHow ??= noticed?.how;
          }),
        );
        await fault.clear?.({ server });
        await Promise.all(watches.map(({ watch }) => watch.close()));
      }
    } catch (error) {
      results.push({ server: kind.server, library: kind.raw.map((r) => r.name).join(', '), usage: '', fault: '(all)', delays: [], error: (error as Error).message });
    } finally {
      armedResolve();
      await server?.stop();
    }
    return results;
  })();
  return { armed, done };
}

export async function detectionBench(settings: BenchSettings): Promise<SectionResult> {
  const started = Date.now();
  const faultList = faults(MONITOR_INPUT.heartbeat.timeoutMs * 2);
  const chosen = (filter: string[], name: string) => !filter.length || filter.some((part) => name.toLowerCase().includes(part.toLowerCase()));
  const faultsOf = (kind: DetectionKind) =>
    [...faultList, ...(kind.kick ? [kickFault(kind.kick)] : [])].filter((f) => (!kind.faults || kind.faults.includes(f.name)) && chosen(settings.faults, f.name));
  const kinds = DETECTION_KINDS.filter((kind) => chosen(settings.kinds, kind.label));
  const raw = kinds.map((kind) => rawPhase(kind, faultsOf(kind), settings));
  await Promise.all(raw.map((phase) => phase.armed));

  const trials: TrialResult[] = [];
  for (const kind of kinds.filter((k) => k.connection)) {
    const server = await kind.startServer();
    try {
      for (const fault of faultsOf(kind)) {
        for (let i = 0; i < settings.trials; i++) {
          const result = await trial(kind, server, fault);
          trials.push(result);
          console.error(`  ${kind.label} ${fault.name} #${i + 1}: down ${result.downMs === undefined ? '-' : ms(result.downMs)} ms, up ${result.upMs === undefined ? '-' : ms(result.upMs)} ms${result.error ? ` (${result.error})` : ''}`);
        }
      }
    } finally {
      await server.stop();
    }
  }
  const rawResults = (await Promise.all(raw.map((phase) => phase.done))).flat();
  const faultsRun = [...new Map(kinds.flatMap(faultsOf).map((f) => [f.name, f])).values()];
  return report(trials, rawResults, faultsRun, settings, (Date.now() - started) / 1_000);
}

function spread(values: number[]): string {
  return values.length ? `${ms(Math.min(...values))} / ${ms(median(values))} / ${ms(Math.max(...values))}` : 'n/a';
}

function report(trials: TrialResult[], raw: RawResult[], faultList: Fault[], settings: BenchSettings, seconds: number): SectionResult {
  const limit = BOUND_MS + GOAL_MARGIN_MS;
  const groups = new Map<string, TrialResult[]>();
  for (const t of trials) groups.set(`${t.kind}\u0000${t.fault}`, [...(groups.get(`${t.kind}\u0000${t.fault}`) ?? []), t]);
  const ourRows = [...groups.values()].map((group) => {
    const downs = group.flatMap((t) => (t.downMs === undefined ? [] : [t.downMs]));
    const ups = group.flatMap((t) => (t.upMs === undefined ? [] : [t.upMs]));
    const within = group.filter((t) => t.downMs !== undefined && t.downMs <= limit).length;
    return [
      group[0]!.kind,
      group[0]!.fault,
      String(BOUND_MS),
      spread(downs),
      `${within}/${group.length}`,
      spread(ups),
      [
        downs.length < group.length ? `${group.length - downs.length} not detected in ${TRIAL_CAP_MS / 1_000} s` : '',
        ups.length < downs.length ? `${downs.length - ups.length} not back up in ${TRIAL_CAP_MS / 1_000} s` : '',
      ]
        .filter(Boolean)
        .join('; '),
    ];
  });
  const ours = markdownTable(
    ['server · client', 'fault', 'bound ms', 'down after fault, ms (min / median / max)', `within bound + ${GOAL_MARGIN_MS} ms`, 'up after fault cleared, ms (min / median / max)', 'notes'],
    ourRows,
    ['l', 'l', 'r', 'r', 'r', 'r', 'l'],
  );

  const capS = settings.rawCapMs / 1_000;
  const rawRows = raw.map((r) => {
    const noticed = r.delays.filter((d): d is number => d !== undefined);
    return [
      r.server,
      r.library,
      r.fault,
      r.error ? `error: ${r.error}` : noticed.length === 0 ? `not detected in ${capS} s (0/${r.delays.length})` : `${noticed.length}/${r.delays.length} within ${capS} s`,
      noticed.length ? spread(noticed) : '',
      r.firstHow ?? '',
    ];
  });
  const rawTable = markdownTable(
    ['server', 'client library alone (defaults)', 'fault', 'noticed', 'after, ms (min / median / max)', 'first report'],
    rawRows,
    ['l', 'l', 'l', 'l', 'r', 'l'],
  );

  const perTrial = [...groups.values()]
    .map((group) => {
      const list = (pick: (t: TrialResult) => number | undefined) => group.map((t) => (pick(t) === undefined ? '-' : ms(pick(t)!))).join(', ');
      const errors = group.filter((t) => t.error).map((t) => t.error);
      return `- ${group[0]!.kind}, ${group[0]!.fault}: down ${list((t) => t.downMs)}; up ${list((t) => t.upMs)}${errors.length ? `; errors: ${errors.join('; ')}` : ''}`;
    })
    .join('\n');
  const usages = [...new Set(raw.filter((r) => r.usage).map((r) => `${r.library}: ${r.usage}`))].join('; ');

  const goals: GoalResult[] = [...new Set(trials.map((t) => t.kind))].map((kind) => {
    const mine = trials.filter((t) => t.kind === kind);
    const late = mine.filter((t) => t.downMs === undefined || t.downMs > limit);
    const worst = Math.max(...mine.map((t) => t.downMs ?? Number.POSITIVE_INFINITY));
    return {
      section: SECTION,
      goal: `${kind}: every trial down within bound + ${GOAL_MARGIN_MS} ms (${limit} ms)`,
      figure: `${mine.length - late.length}/${mine.length} within; worst ${Number.isFinite(worst) ? `${ms(worst)} ms` : 'not detected'}${late.length ? ` (late: ${late.map((t) => `${t.fault} ${t.downMs === undefined ? 'never' : ms(t.downMs)}`).join(', ')})` : ''}`,
      met: late.length === 0,
    };
  });
  const { intervalMs, timeoutMs, connectTimeoutMs } = MONITOR_INPUT.heartbeat;
  const { initialDelayMs, maxDelayMs } = MONITOR_INPUT.reconnect;
  const markdown = [
    `The engine runs in the bench driver (ConnectionMonitor over the real adapter, as the module builds it) with \`intervalMs\` ${intervalMs}, \`timeoutMs\` ${timeoutMs}`,
    `(bound ${BOUND_MS} ms), \`connectTimeoutMs\` ${connectTimeoutMs}, reconnect backoff ${initialDelayMs} to ${maxDelayMs} ms, default jitter. Each of the ${settings.trials} trials per fault`,
    `starts a fresh monitor, injects the fault at a random point of the heartbeat cycle, waits for \`down\`, holds the fault ${Math.max(0, ...faultList.map((f) => f.holdMs))} ms`,
    `(reconnects run into it), clears it and waits for \`up\`. "Cleared" is when the restarted server answers (kill), when the proxy passes traffic again`,
    `(blackhole, slow), or the reset or kick itself (RST, kick: one-off events); a negative recovery means the monitor was back before the server kit's own`,
    `readiness check (a query, an IMAP greeting, a STOMP CONNECTED) returned. Faults:`,
    ...faultList.map((f) => `- **${f.name}**: ${f.description}`),
    '',
    ours,
    '',
    `The client libraries alone, with their default settings and used like an app would (${usages}), on a server of their own, at the same time:`,
    `${settings.trials} clients per library and fault, each behind its own proxy, all faulted at once and given ${capS} s to report anything (an error or close event, a rejected query).`,
    '',
    rawTable,
    '',
    '<details><summary>Every trial, ms</summary>',
    '',
    perTrial,
    '',
    '</details>',
  ].join('\n');
  return { title: SECTION, markdown, goals, seconds };
}
