/**
 * The secrets the leak tests plant in the corpus and in configurations, and the search for any form of one
 * in what the package wrote.
 */
import { credentialBlobs, ENCODINGS, plantedForms, renderCorpusText, type Credentials } from './secret-corpus.js';

export const PLANTED_USER = 'alice';

/** Each shape of password a pattern or an encoding could get wrong. */
export const PLANTED_SECRETS: ReadonlyArray<{ why: string; secret: string }> = [
  { why: 'spaces', secret: 'correct horse battery staple' },
  { why: 'a single quote', secret: "it's-s3cret" },
  { why: 'double quotes', secret: 'say "friend" in' },
  { why: '@', secret: 'p@ssw0rd@home' },
  { why: ':', secret: 'pa:ss:w0rd' },
  { why: '/', secret: 'pa/ss/w0rd' },
  { why: '%', secret: '100%sure%20' },
  { why: '+', secret: 'one+two+3' },
  { why: '&', secret: 'salt&pepper&9' },
  { why: '=', secret: 'k=v==x9' },
  { why: 'backslashes', secret: 'dom\\user\\pw' },
  { why: 'ä', secret: 'Gänsefüßchen' },
  { why: 'Chinese', secret: '我的密码很长' },
  { why: 'an emoji', secret: 'key🔑lock🙈' },
  { why: 'base64-looking text', secret: 'c2VjcmV0LXBhc3N3b3Jk' },
  { why: 'a JWT-looking token', secret: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlMTIz' },
  { why: 'a very long one', secret: `L0ng-${'x7Qz'.repeat(120)}-end` },
  { why: 'everything at once', secret: 'p@ss w"o\'r\\d:/%+&=ä密😀' },
];

/** A piece this long of a secret found in the output is a leak even when the whole secret is not. */
const WINDOW = 8;
/** Pieces looked for per form at most: a long secret is sampled, which still finds any long piece of it left. */
const MAX_PIECES = 24;

/** Every form of the planted secret in which `template` carries it, plus the blobs and encodings any source may use. */
export function searchedForms(template: string, credentials: Credentials): string[] {
  const blobs = credentialBlobs(credentials);
  return [...new Set([...plantedForms(template, credentials), blobs.sasl!, blobs.basic!, ENCODINGS.base64(credentials.secret)])];
}

/**
 * The forms of the planted secret found in `output`, which was made from `template` (a corpus entry, or any
 * text with placeholders): whole forms, or a piece of WINDOW characters of the secret as written or
 * percent-encoded that the text would not hold without the secret (a secret cut short, or half-redacted).
 */
export function leakedForms(output: string, template: string, credentials: Credentials): string[] {
  const baseline = renderCorpusText(template, { ...credentials, secret: '' });
  const found: string[] = [];
  const pieced = new Set([credentials.secret, ENCODINGS.url(credentials.secret)]);
  for (const form of searchedForms(template, credentials)) {
    if (output.includes(form)) {
      found.push(JSON.stringify(form));
      continue;
    }
    if (!pieced.has(form)) continue;
    const step = Math.max(1, Math.floor((form.length - WINDOW) / MAX_PIECES));
    for (let i = 0; i + WINDOW <= form.length; i += step) {
      const piece = form.slice(i, i + WINDOW);
      if (output.includes(piece) && !baseline.includes(piece)) {
        found.push(`a piece ${JSON.stringify(piece)} of ${JSON.stringify(form).slice(0, 40)}`);
        break;
      }
    }
  }
  return found;
}
