/** MQTT topic names and filters, as the broker reads them (MQTT 3.1.1 and 5, section 4.7). */

/**
 * Whether a message published to `topic` matches the subscription `filter`. A shared subscription
 * (`$share/group/filter`) matches as its filter does. A topic beginning with `$` never matches a filter
 * beginning with a wildcard, as the broker never sends it one.
 */
export function topicMatches(filter: string, topic: string): boolean {
  const wanted = filter.startsWith('$share/') ? filter.split('/').slice(2).join('/') : filter;
  const levels = wanted.split('/');
  const topicLevels = topic.split('/');
  if (topic.startsWith('$') && (levels[0] === '#' || levels[0] === '+')) return false;
  for (let i = 0; i < levels.length; i += 1) {
    if (levels[i] === '#') return true;
    if (i >= topicLevels.length || (levels[i] !== '+' && levels[i] !== topicLevels[i])) return false;
  }
  return levels.length === topicLevels.length;
}

/** Why `filter` is no valid subscription filter; undefined for a valid one. */
export function filterProblem(filter: string): string | undefined {
  if (filter === '' || filter.includes('\u0000')) return 'it is empty or holds a NUL character';
  const levels = (filter.startsWith('$share/') ? filter.split('/').slice(2) : filter.split('/'));
  if (filter.startsWith('$share/') && (filter.split('/')[1] === '' || levels.length === 0)) return 'a shared subscription is $share/<group>/<filter>';
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return "'#' must be the whole last level";
    if (level.includes('+') && level !== '+') return "'+' must be a whole level";
  }
  return undefined;
}

/** Why `topic` is no valid topic to publish to; undefined for a valid one. */
export function topicNameProblem(topic: string): string | undefined {
  if (topic === '' || topic.includes('\u0000')) return 'it is empty or holds a NUL character';
  if (/[+#]/.test(topic)) return 'a topic to publish to holds no wildcard (+ or #)';
  return undefined;
}
