import { createHash } from 'node:crypto';

/*
 * The page's only style and script, inline and constant: the Content-Security-Policy allows exactly these two
 * texts by their sha256 hash, so the page needs no per-response nonce, no external asset (it works offline and
 * behind any proxy) and no build step. Colours come from classes: a strict CSP refuses style attributes.
 * ASCII only, so that the hash of the text is the hash of its bytes on the wire.
 */
export const STATUS_PAGE_STYLE = `
:root{color-scheme:light dark;font:14px/1.4 system-ui,sans-serif}
body{margin:0 auto;max-width:72rem;padding:1rem}
header{display:flex;gap:1rem;align-items:baseline;flex-wrap:wrap}
h1{font-size:1.3rem;margin:0}
h2{font-size:1.1rem;margin:0 0 .4rem;display:flex;gap:.5rem;align-items:baseline;flex-wrap:wrap}
.badge{border-radius:.3rem;padding:0 .4rem;font-weight:600;color:#fff}
.conn{border:1px solid #8886;border-left-width:.4rem;border-radius:.3rem;padding:.6rem .8rem;margin:.8rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:0 0 .4rem}
dt{opacity:.7}dd{margin:0}
.rtt{margin:.2rem 0 .4rem}
.spark{width:24rem;max-width:100%;height:3rem;display:block;color:#2563eb}
.spark .frame{color:#8884}
.spark .miss{color:#dc2626}
figcaption{font-size:.85rem}
.timeline{margin:.3rem 0 0;padding-left:1.2rem;max-height:12rem;overflow:auto}
.timeline .reason{opacity:.8}
.muted{opacity:.7}
.s-up,.o-ok{background:#15803d;border-color:#15803d}
.s-degraded,.o-degraded{background:#b45309;border-color:#b45309}
.s-down,.s-failed,.o-error{background:#b91c1c;border-color:#b91c1c}
.s-connecting,.s-reconnecting{background:#1d4ed8;border-color:#1d4ed8}
.s-idle,.s-closing,.s-closed,.o-shutting_down{background:#4b5563;border-color:#4b5563}
.conn.s-up,.conn.s-degraded,.conn.s-down,.conn.s-failed,.conn.s-connecting,.conn.s-reconnecting,.conn.s-idle,.conn.s-closing,.conn.s-closed{background:none}
.timeline li{list-style:none}
.timeline .badge{font-weight:400}
.live-on{color:#15803d}.live-off{color:#b45309}
`;

export const STATUS_PAGE_SCRIPT = `
(function () {
  var overall = document.getElementById('overall');
  var main = document.getElementById('connections');
  var live = document.getElementById('live');
  var url = location.pathname.replace(/\\/?$/, '/events');
  var source, retry;
  function localTimes(root) {
    root.querySelectorAll('time[datetime]').forEach(function (t) {
      var d = new Date(t.getAttribute('datetime'));
      if (!isNaN(d.getTime())) t.textContent = d.toLocaleString();
    });
  }
  function connect() {
    source = new EventSource(url);
    source.onopen = function () { live.textContent = 'live'; live.className = 'live-on'; };
    source.addEventListener('view', function (e) {
      var view = JSON.parse(e.data);
      overall.textContent = view.status;
      overall.className = 'badge o-' + view.status;
      main.innerHTML = view.html;
      localTimes(main);
    });
    source.onerror = function () {
      live.textContent = 'reconnecting...';
      live.className = 'live-off';
      // The browser retries a dropped stream by itself; one it gave up on (an error answer) is opened anew.
      if (source.readyState === EventSource.CLOSED) { clearTimeout(retry); retry = setTimeout(connect, 3000); }
    };
  }
  localTimes(document);
  connect();
})();
`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** Nothing but the page's own style, script and stream; no frame, form, base or plugin. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(STATUS_PAGE_SCRIPT)}`,
  `style-src ${hash(STATUS_PAGE_STYLE)}`,
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The page's answer headers, wherever it is served (a route of the app or the management port). */
export const STATUS_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': STATUS_PAGE_CSP,
  // Fetched again on each visit: the page holds the state at the time it was rendered.
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};
