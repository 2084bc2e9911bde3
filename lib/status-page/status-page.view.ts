import type { SecretScrubber } from '../core/secret-scrubber.js';
import type { ConnectionHealthProbes } from '../health/connection-health.probes.js';
import { reportConnection } from '../health/connection-report.js';
import type { HealthDetailLevel } from '../interfaces/health-controller-options.interface.js';
import type { ConnectionHandle } from '../registry/connection-handle.js';
import { type ConnectionHistory, RTT_SAMPLES } from './connection-history.js';
import { STATUS_PAGE_SCRIPT, STATUS_PAGE_STYLE } from './status-page.assets.js';

/** What one SSE `view` event carries: the overall status and the connections' part of the page. */
export interface StatusView {
  readonly status: string;
  readonly html: string;
}

const SPARK_WIDTH = 120;
const SPARK_HEIGHT = 30;

/**
 * Renders the status page on the server, as a whole page and as the part that a live update replaces, from
 * snapshots and the kept history only. Every text is escaped; at 'status' no reason, target, kind or last
 * error is shown, at 'none' only the overall status (the same levels as the probe answers).
 */
export class StatusPageView {
  constructor(
    private readonly probes: ConnectionHealthProbes,
    private readonly scrubber: SecretScrubber,
    private readonly details: HealthDetailLevel,
  ) {}

  page(handles: readonly ConnectionHandle[], histories: ReadonlyMap<string, ConnectionHistory>, now: number): string {
    const view = this.view(handles, histories, now);
    return (
      '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
      '<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">' +
      `<title>Connection health</title><style>${STATUS_PAGE_STYLE}</style></head><body>` +
      `<header><h1>Connection health</h1><span id="overall" class="badge o-${escape(view.status)}">${escape(view.status)}</span>` +
      '<span id="live" class="live-off">connecting...</span></header>' +
      `<main id="connections">${view.html}</main><script>${STATUS_PAGE_SCRIPT}</script></body></html>`
    );
  }

  view(handles: readonly ConnectionHandle[], histories: ReadonlyMap<string, ConnectionHistory>, now: number): StatusView {
    const status = this.probes.readiness().status;
    if (this.details === 'none') return { status, html: '' };
    const html = handles.map((handle) => this.connection(handle, histories.get(handle.name), now)).join('');
    return { status, html: html || '<p class="muted">No connection is monitored.</p>' };
  }

  private connection(handle: ConnectionHandle, history: ConnectionHistory | undefined, now: number): string {
    const report = reportConnection(handle, now);
    const s = handle.snapshot();
    const full = this.details === 'full';
    const state = report.stale ? 'down' : s.state;
    const rows: [string, string][] = [];
    if (full) {
      rows.push(['kind', escape(s.kind)]);
      if (s.target !== undefined) rows.push(['target', escape(this.scrubber.scrub(String(report.details['target'])))]);
      rows.push(['reason', escape(this.scrubber.scrub(String(report.details['reason'])))]);
    }
    rows.push(['since', time(s.since)]);
    rows.push(['last RTT', s.lastRttMs === undefined ? '-' : `${ms(s.lastRttMs)}`]);
    rows.push(['reconnect attempts', String(s.reconnectAttempts)]);
    rows.push(['next attempt', s.nextAttemptAt === undefined ? '-' : time(s.nextAttemptAt)]);
    if (full && s.lastError !== undefined) rows.push(['last error', escape(this.scrubber.scrub(s.lastError))]);
    return (
      `<section class="conn s-${state}" data-connection="${escape(handle.name)}" data-state="${state}">` +
      `<h2>${escape(handle.name)} <span class="badge s-${state}">${state}</span>` +
      `<span class="muted">${handle.required ? 'required' : 'optional'}</span></h2>` +
      `<dl>${rows.map(([term, value]) => `<dt>${term}</dt><dd>${value}</dd>`).join('')}</dl>` +
      sparkline(history?.recentRtts() ?? []) +
      this.timeline(history, now) +
      '</section>'
    );
  }

  private timeline(history: ConnectionHistory | undefined, now: number): string {
    const transitions = history?.transitions(now) ?? [];
    if (transitions.length === 0) return '<p class="muted">No transition in the last hour.</p>';
    const items = [...transitions].reverse().map(
      (t) =>
        `<li>${time(t.at)} <span class="badge s-${t.from}">${t.from}</span> &rarr; <span class="badge s-${t.to}">${t.to}</span>` +
        (this.details === 'full' ? ` <span class="reason">${escape(this.scrubber.scrub(t.reason))}</span>` : '') +
        '</li>',
    );
    return `<ol class="timeline" aria-label="transitions of the last hour, newest first">${items.join('')}</ol>`;
  }
}

/** The RTTs of the last beats as an inline SVG: a line per run of answered beats, a red tick per failed one. */
function sparkline(rtts: readonly number[]): string {
  if (rtts.length === 0) return '<p class="muted">No heartbeat yet.</p>';
  const answered = rtts.filter((rtt) => !Number.isNaN(rtt));
  const max = Math.max(...answered, 0.001);
  const step = SPARK_WIDTH / (RTT_SAMPLES - 1);
  // The newest beat at the right edge, as in every sparkline; older ones to its left.
  const x = (i: number) => (SPARK_WIDTH - (rtts.length - 1 - i) * step).toFixed(1);
  const y = (rtt: number) => (SPARK_HEIGHT - 1 - (rtt / max) * (SPARK_HEIGHT - 2)).toFixed(1);
  const runs: string[][] = [[]];
  const misses: string[] = [];
  rtts.forEach((rtt, i) => {
    if (Number.isNaN(rtt)) {
      misses.push(`<line class="miss" x1="${x(i)}" y1="0" x2="${x(i)}" y2="${SPARK_HEIGHT}" stroke="currentColor" stroke-width="1"/>`);
      runs.push([]);
    } else runs.at(-1)!.push(`${x(i)},${y(rtt)}`);
  });
  const lines = runs
    .filter((run) => run.length > 0)
    // A single answered beat between failures is a dot: a polyline of one point draws nothing.
    .map((run) => `<polyline points="${run.length === 1 ? `${run[0]} ${run[0]}` : run.join(' ')}" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linecap="round" vector-effect="non-scaling-stroke"/>`);
  const label =
    `RTT of the last ${rtts.length} heartbeats` +
    (answered.length ? `: ${ms(Math.min(...answered))} to ${ms(max)}` : '') +
    (misses.length ? `, ${misses.length} failed` : '');
  return (
    `<figure class="rtt"><svg class="spark" viewBox="0 0 ${SPARK_WIDTH} ${SPARK_HEIGHT}" preserveAspectRatio="none" role="img" aria-label="${label}">` +
    `<title>${label}</title><rect class="frame" x="0" y="0" width="${SPARK_WIDTH}" height="${SPARK_HEIGHT}" fill="none" stroke="currentColor" vector-effect="non-scaling-stroke"/>` +
    `${lines.join('')}${misses.join('')}</svg><figcaption class="muted">${label}</figcaption></figure>`
  );
}

/** UTC in the page as sent; the page's script shows it in the reader's local time. */
function time(at: number): string {
  const iso = new Date(at).toISOString();
  return `<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</time>`;
}

function ms(value: number): string {
  return `${value < 10 ? value.toFixed(2) : Math.round(value)} ms`;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
