import type { ConnectionChange, ConnectionChangeSummary } from './connection-change.js';

/** One line for a person (a chat message, a log line): `db (typeorm, required) is down, was up: <reason>`. */
export function changeText(change: ConnectionChange | ConnectionChangeSummary): string {
  const what = `${change.connection} (${change.kind}, ${change.required ? 'required' : 'optional'})`;
  const attempts = change.reconnectAttempts > 0 ? `; reconnect attempts: ${change.reconnectAttempts}` : '';
  const reason = change.reason ? `: ${change.reason}` : '';
  if (change.type === 'summary') {
    const window = change.windowMs % 1_000 === 0 ? `${change.windowMs / 1_000} s` : `${change.windowMs} ms`;
    return `${what} changed state ${change.changes} times in the last ${window}, now ${change.to}${reason}${attempts}`;
  }
  return `${what} is ${change.to}, was ${change.from}${reason}${attempts}`;
}
