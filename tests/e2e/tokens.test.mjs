// A refresh token must never pass as an access token, against the real dev IdP (oidc-provider), whose
// introspection answers for a refresh token `active: true` without `token_type` (an access token's answer
// says `Bearer`). A session is logged in through Shroud's OAuth Agent without a browser (the IdP's redirects
// followed by hand); then:
// - the refresh token, decrypted from the `-auth` cookie with the test's cookie key, sent as
//   `Authorization: Bearer` → 401 `invalid_token`, nothing forwarded;
// - the `-auth` cookie's value moved into the `-at` cookie → 401, nothing forwarded: in the default
//   `bound` cookie format the moved value does not decrypt (`unauthorized_request`, the IdP is not asked);
//   in the `curity_v1` format it decrypts, and the introspection answer is what refuses it (`invalid_token`).
// Redis is the cache, as in production.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv } from 'node:crypto';
import { Stack, freePort, hexKey, signingKeyFile, toml } from './harness.mjs';

/** Decrypts a token-handler cookie value (version 1: no associated data; version 2: the cookie name). */
function decryptCookie(value, name, keyHex) {
  const raw = Buffer.from(value, 'base64url');
  const version = raw[0];
  const iv = raw.subarray(1, 13);
  const tag = raw.subarray(raw.length - 16);
  const decipher = createDecipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), iv);
  if (version === 2) decipher.setAAD(Buffer.from(name));
  else assert.equal(version, 1, 'a known cookie format');
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(raw.subarray(13, raw.length - 16)), decipher.final()]).toString('utf8');
}

/** Cookies by name, from Set-Cookie lines (cleared ones removed). */
function absorb(jar, response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (value === '') jar.delete(name);
    else jar.set(name, value);
  }
}

const cookieHeader = (jar) => [...jar].map(([n, v]) => `${n}=${v}`).join('; ');

/** Logs in through the OAuth Agent: login/start, the IdP's redirects (its own cookies kept), login/end. */
async function login(shroudUrl, origin) {
  const jar = new Map();
  const start = await fetch(`${shroudUrl}/oauth-agent/login/start`, { method: 'POST', headers: { origin } });
  assert.equal(start.status, 200, await start.clone().text());
  absorb(jar, start);
  let next = (await start.json()).authorizationRequestUrl;
  const idpJar = new Map();
  for (let hop = 0; hop < 12 && !next.startsWith(`${origin}/callback`); hop += 1) {
    const response = await fetch(next, { redirect: 'manual', headers: { cookie: cookieHeader(idpJar) } });
    absorb(idpJar, response);
    const location = response.headers.get('location');
    assert.ok(location, `the IdP redirects (hop ${hop}, status ${response.status})`);
    await response.arrayBuffer();
    next = new URL(location, next).href;
  }
  assert.ok(next.startsWith(`${origin}/callback`), 'the IdP sent the browser back with a code');
  const end = await fetch(`${shroudUrl}/oauth-agent/login/end`, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/json', cookie: cookieHeader(jar) },
    body: JSON.stringify({ pageUrl: next }),
  });
  assert.equal(end.status, 200, await end.clone().text());
  absorb(jar, end);
  const body = await end.json();
  assert.equal(body.isLoggedIn, true);
  return { jar, csrf: body.csrf };
}

const setups = [
  { format: 'bound', mode: 'rfc9701', moved: { code: 'unauthorized_request', asksIdp: false } },
  { format: 'bound', mode: 'jwt', moved: { code: 'unauthorized_request', asksIdp: false } },
  { format: 'curity_v1', mode: 'json', moved: { code: 'invalid_token', asksIdp: true } },
  { format: 'curity_v1', mode: 'rfc9701', moved: { code: 'invalid_token', asksIdp: true } },
];

for (const { format, mode, moved } of setups) {
  describe(`refresh tokens as access tokens, cookie_format ${format}, ${mode} mode, real dev IdP`, () => {
    const stack = new Stack(`tokens-${format}-${mode}`);
    const cookieKey = hexKey();
    let idp;
    let api;
    let shroud;
    let origin;
    let session;

    const introspections = async () => (await (await fetch(`${idp.issuer}/_test/stats`)).json()).introspections;

    before(async () => {
      const redis = await stack.redis();
      const port = await freePort();
      origin = `http://127.0.0.1:${await freePort()}`;
      idp = await stack.idp({ spaOrigins: [origin], backchannelUri: `http://127.0.0.1:${port}/oauth-agent/backchannel-logout` });
      api = await stack.upstream();
      const config = {
        server: { listen: `127.0.0.1:${port}`, workers: 1 },
        issuer: { url: idp.issuer },
        introspection: { client_id: 'gateway', client_secret: 'gateway-secret', response: mode },
        phantom: { signing_key_file: await signingKeyFile(stack.name) },
        cache: { backend: 'redis', redis_url: redis.url, key_secret: hexKey() },
        token_handler: {
          enabled: true,
          client_id: 'webapp',
          client_secret: 'webapp-secret',
          redirect_uri: `${origin}/callback`,
          post_logout_redirect_uri: `${origin}/`,
          scope: 'openid profile read',
          trusted_web_origins: [origin],
          cookie_encryption_keys: [cookieKey],
          cookie_secure: false,
          cookie_format: format,
        },
        routes: [
          { path_prefix: '/api', upstream: api.url, credentials: 'bearer', required_scopes: ['read'] },
          { path_prefix: '/spa', upstream: api.url, credentials: 'cookie', required_scopes: ['read'] },
        ],
      };
      shroud = await stack.shroud('shroud', port, toml(config));
      session = await login(shroud.url, origin);
    });

    after(() => stack.stop());

    test('the session works, and its cookies are in the configured format', async () => {
      const version = format === 'bound' ? 2 : 1;
      for (const name of ['shroud-at', 'shroud-auth', 'shroud-id', 'shroud-csrf']) {
        assert.equal(Buffer.from(session.jar.get(name), 'base64url')[0], version, `${name} version byte`);
      }
      const response = await fetch(`${shroud.url}/spa/x`, { headers: { origin, cookie: cookieHeader(session.jar) } });
      assert.equal(response.status, 200, await response.clone().text());
      assert.equal(api.seen.at(-1).url, '/spa/x');
    });

    test('the decrypted refresh token as a bearer token is 401 invalid_token, nothing forwarded', async () => {
      const refreshToken = decryptCookie(session.jar.get('shroud-auth'), 'shroud-auth', cookieKey);
      const accessToken = decryptCookie(session.jar.get('shroud-at'), 'shroud-at', cookieKey);
      assert.notEqual(refreshToken, accessToken);
      const seen = api.seen.length;
      const asked = await introspections();
      const response = await fetch(`${shroud.url}/api/orders`, { headers: { authorization: `Bearer ${refreshToken}` } });
      assert.equal(response.status, 401);
      assert.match(response.headers.get('www-authenticate'), /error="invalid_token"/);
      assert.equal((await response.json()).code, 'invalid_token');
      assert.equal(api.seen.length, seen, 'nothing reached the upstream');
      assert.ok((await introspections()) > asked, 'the IdP was asked, and answered active');
      // Asked again (cached as refused, never as active): still refused.
      assert.equal((await fetch(`${shroud.url}/api/orders`, { headers: { authorization: `Bearer ${refreshToken}` } })).status, 401);
      assert.equal(api.seen.length, seen, 'nothing reached the upstream');
      // Control: the access token itself passes.
      const control = await fetch(`${shroud.url}/api/orders`, { headers: { authorization: `Bearer ${accessToken}` } });
      assert.equal(control.status, 200);
    });

    test(`the -auth cookie moved into -at is 401 ${moved.code}, nothing forwarded`, async () => {
      // A session of its own, so its refresh token was never introspected (nor cached as refused) before.
      const own = await login(shroud.url, origin);
      const forged = new Map(own.jar);
      forged.set('shroud-at', own.jar.get('shroud-auth'));
      const seen = api.seen.length;
      const asked = await introspections();
      for (const method of ['GET', 'POST']) {
        const response = await fetch(`${shroud.url}/spa/orders`, {
          method,
          headers: { origin, cookie: cookieHeader(forged), 'x-shroud-csrf': own.csrf },
        });
        assert.equal(response.status, 401, `${method}: ${await response.clone().text()}`);
        assert.equal((await response.json()).code, moved.code, method);
      }
      assert.equal(api.seen.length, seen, 'nothing reached the upstream');
      assert.equal((await introspections()) > asked, moved.asksIdp, 'whether the IdP was asked');
    });

    test('no cookie key, refresh token or access token appears in any log', async () => {
      const refreshToken = decryptCookie(session.jar.get('shroud-auth'), 'shroud-auth', cookieKey);
      const logs = stack.allLogs();
      assert.ok(!logs.includes(cookieKey), 'cookie key in logs');
      assert.ok(!logs.includes(refreshToken), 'refresh token in logs');
      assert.ok(!logs.includes(session.jar.get('shroud-auth')), 'cookie value in logs');
    });
  });
}
