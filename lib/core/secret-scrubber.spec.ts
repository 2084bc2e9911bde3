import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { redactSecrets } from './redact.js';
import { SecretScrubber } from './secret-scrubber.js';

describe('redactSecrets (secrets the package was not told)', () => {
  const cases: Array<[string, string]> = [
    ['Authorization: Bearer abc.def-123_tok', 'Authorization: Bearer ***'],
    ['authorization: "Basic dXNlcjpodW50ZXIy"', 'authorization: "Basic ***"'],
    ['Proxy-Authorization: Digest username="bob", response="6629fae4"', 'Proxy-Authorization: Digest ***'],
    ['ERROR\nmessage:Bad CONNECT\npasscode:hunter2\nlogin:bob\n', 'ERROR\nmessage:Bad CONNECT\npasscode:***\nlogin:bob\n'],
    ["password='my secret phrase' host=db", "password='***' host=db"],
    ['{"password":"s3 cr3t","user":"app"}', '{"password":"***","user":"app"}'],
    ['db_password=xyz; other=1', 'db_password=***; other=1'],
    ['Host=db;Username=app;Password=s3cr3t;Database=x', 'Host=db;Username=app;Password=***;Database=x'],
    ['amqp://guest@broker/', 'amqp://***@broker/'],
    ['postgres://user:p@ss@host:5432/db', 'postgres://***@host:5432/db'],
    ['postgres://user:pa/ss@host/db', 'postgres://***@host/db'],
    ['postgres://user:p%40ss@host/db', 'postgres://***@host/db'],
    ['A1 LOGIN "alice" "pass word"', 'A1 LOGIN "alice" ***'],
    ['A1 LOGIN alice "pa\\"ss word"', 'A1 LOGIN alice ***'],
    ['A2 AUTHENTICATE PLAIN AGFsaWNlAGh1bnRlcjI=', 'A2 AUTHENTICATE PLAIN ***'],
    ['token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abcDEF123 expired', 'token *** expired'],
    ['PGPASSWORD=s3cr3t psql', 'PGPASSWORD=*** psql'],
    ['{"dbPassword":"a b","secretAccessKey":"xyz"}', '{"dbPassword":"***","secretAccessKey":"***"}'],
    ['GET /login?user=a&password%3Ds3cr3t', 'GET /login?user=a&password%3D***'],
    ['pg_dump --password s3cr3t --host db', 'pg_dump --password *** --host db'],
    ['Set-Cookie: session=abc123; HttpOnly', 'Set-Cookie: ***'],
    ['C: AUTH PLAIN AGFsaWNlAGh1bnRlcjI=', 'C: AUTH PLAIN ***'],
    ["=> 'a1 login alice s3cr3t'", "=> 'a1 login alice ***"],
    ['GET https://acct.blob.example/c?sv=2020&sig=abc%2Bdef&se=1', 'GET https://acct.blob.example/c?sv=2020&sig=***&se=1'],
    // Found by the secret corpus (test/secret-corpus.spec.ts):
    ['>>> CONNECT\nlogin:bob\npasscode:correct horse & "staple"\naccept-version:1.2', '>>> CONNECT\nlogin:bob\npasscode:***\naccept-version:1.2'],
    ["{ password: `say \"it's\" \\\\ ok`, host: 'db' }", "{ password: `***`, host: 'db' }"],
    ['2 AUTHENTICATE PLAIN\r\n+ \r\nAGFsaWNlAGh1bnRlcjI=\r\n2 NO [AUTHENTICATIONFAILED] failed.', '2 AUTHENTICATE PLAIN\r\n+ \r\n***\r\n2 NO [AUTHENTICATIONFAILED] failed.'],
    ['3 AUTHENTICATE LOGIN\r\n+ VXNlcm5hbWU6\r\nYWxpY2U=\r\n+ UGFzc3dvcmQ6\r\naHVudGVyMg==\r\n', '3 AUTHENTICATE LOGIN\r\n+ VXNlcm5hbWU6\r\n***\r\n+ UGFzc3dvcmQ6\r\n***\r\n'],
  ];
  for (const [input, expected] of cases) {
    it(`redacts ${JSON.stringify(input)}`, () => assert.equal(redactSecrets(input), expected));
  }

  const untouched = [
    'http://localhost:3000/health answered 503',
    'connect ECONNREFUSED 127.0.0.1:5432',
    'login failed for user "alice"',
    'the server refused authentication (NO [AUTHENTICATIONFAILED]): Authentication failed.',
    'GET https://api.example/v1/users/@me answered 404',
    'at file:///app/node_modules/@nestjs/core/router/router-explorer.js:12:3',
    'smtp://mail.example: 550 <bob@example.org> mailbox unavailable',
    'passport-db: up -> down (heartbeat failed)',
    'tokenizer: ready',
  ];
  for (const text of untouched) it(`leaves ${JSON.stringify(text)} whole`, () => assert.equal(redactSecrets(text), text));

  // Every repetition is bounded: an unbounded pattern took 2-21 s on 50-100 KB of such text, blocking the
  // event loop at each failed beat. The bound asserted is generous; linear patterns take milliseconds.
  const hostile: Array<[string, string]> = [
    ['a run of letters', 'a'.repeat(100_000)],
    ['a base64 run', Buffer.alloc(75_000, 7).toString('base64')],
    ['repeated scheme and colon', 'x://a:'.repeat(17_000)],
    ['repeated JWT openings', 'eyJ-'.repeat(25_000)],
    ['repeated keys', 'password=x;'.repeat(9_000)],
    ['a long line full of @', `${'u:p@'.repeat(25_000)}`],
  ];
  for (const [what, text] of hostile) {
    it(`scrubs 100 KB of ${what} in well under a second`, () => {
      const scrubber = new SecretScrubber();
      scrubber.add(['hunter22', 'p@ss wörd']);
      const startedAt = performance.now();
      scrubber.scrub(text);
      const ms = performance.now() - startedAt;
      assert.ok(ms < 1_000, `${Math.round(ms)} ms`);
    });
  }
});

describe('SecretScrubber (secrets the package was told)', () => {
  const secret = 'p@ss wörd/%+"\'';
  const scrubber = new SecretScrubber();
  scrubber.add([secret, 'hunter22', 'ab', undefined, 42]);
  const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

  const forms: Array<[string, string]> = [
    ['as written', `got ${secret} back`],
    ['URL-encoded', `url ${encodeURIComponent(secret)}`],
    ['URL-encoded, lower-case hex', `url ${encodeURIComponent(secret).toLowerCase()}`],
    ['form-encoded', `body ${new URLSearchParams({ s: secret }).toString().slice(2)}`],
    ['JSON-escaped', JSON.stringify({ reason: `echo ${secret}` })],
    ['in SASL PLAIN', base64(`\0alice\0${secret}`)],
    ['in Basic auth, url-safe alphabet', base64(`bob:${secret}`).replaceAll('+', '-').replaceAll('/', '_')],
    ['in XOAUTH2 at every offset', [0, 1, 2].map((pad) => base64(`${'x'.repeat(pad)}user=a\x01auth=Bearer hunter22\x01\x01`)).join(' ')],
    ['inside a word', 'the x-hunter22-y'],
  ];
  for (const [form, text] of forms) {
    it(`removes a secret ${form}`, () => {
      const scrubbed = scrubber.scrub(text);
      assert.ok(!scrubbed.includes('hunter22') && !scrubbed.includes(secret), scrubbed);
      assert.match(scrubbed, /\*\*\*/);
      for (const blob of text.match(/[A-Za-z0-9+/_-]{12,}={0,2}/g) ?? []) assert.ok(!scrubbed.includes(blob), `${blob} survived in ${scrubbed}`);
    });
  }

  it('removes a secret as util.inspect prints it, in each of its quote styles', () => {
    const withBackslash = new SecretScrubber();
    const secrets = ['dom\\us"er', "it's\\x", 'p"a\'s\\s'];
    withBackslash.add(secrets);
    for (const value of secrets) {
      const shown = withBackslash.scrub(`reason: ${inspect({ reason: `failed for ${value}` })}`);
      assert.ok(!shown.includes(value.replaceAll('\\', '\\\\')) && !shown.includes('us') && !shown.includes("'s\\"), shown);
    }
  });

  it('removes a short secret only where it stands as a word', () => {
    const short = new SecretScrubber();
    short.add(['admin']);
    assert.equal(short.scrub('user admin refused; the administrator knows'), 'user *** refused; the administrator knows');
  });

  it("keeps a source's last two generations only: a token per session does not grow it forever", () => {
    const rotating = new SecretScrubber();
    rotating.add(['module-key-1']);
    for (let session = 1; session <= 1_000; session += 1) rotating.learn('mail', [`configured-pass`, `token-${session}-xyz`]);
    assert.equal(rotating.scrub('token-1000-xyz token-999-xyz token-998-xyz configured-pass module-key-1'), '*** *** token-998-xyz *** ***');
    assert.match(inspect(rotating), /4 secret\(s\)/);
  });

  it('leaves short values and other text alone', () => {
    assert.equal(scrubber.scrub('about 42 tables'), 'about 42 tables');
  });

  it('scrubs every string value of a plain value, and leaves keys and the rest', () => {
    const at = new Date(0);
    assert.deepEqual(scrubber.scrubDeep({ reason: 'hunter22', list: ['x hunter22'], n: 1, at, hunter22: true }), {
      reason: '***',
      list: ['x ***'],
      n: 1,
      at,
      hunter22: true,
    });
  });

  it('shows none of its secrets when inspected or serialized', () => {
    const shown = inspect(scrubber, { showHidden: true, depth: Infinity }) + JSON.stringify({ scrubber });
    assert.ok(!shown.includes('hunter22') && !shown.includes('wörd'), shown);
  });
});
