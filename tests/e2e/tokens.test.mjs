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
import { Stack, agentLogin, freePort, hexKey, signingKeyFile, tokenHandlerSettings, toml } from './harness.mjs';

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
        token_handler: tokenHandlerSettings(origin, cookieKey, { cookie_format: format }),
        routes: [
          { path_prefix: '/api', upstream: api.url, credentials: 'bearer', required_scopes: ['read'] },
          { path_prefix: '/spa', upstream: api.url, credentials: 'cookie', required_scopes: ['read'] },
        ],
      };
      shroud = await stack.shroud('shroud', port, toml(config));
      session = await agentLogin(shroud.url, origin);
    });

    after(() => stack.stop());

    test('the session works, and its cookies are in the configured format', async () => {
      const version = format === 'bound' ? 2 : 1;
      for (const name of ['shroud-at', 'shroud-auth', 'shroud-id', 'shroud-csrf']) {
        assert.equal(Buffer.from(session.jar.get(name), 'base64url')[0], version, `${name} version byte`);
      }
      const response = await fetch(`${shroud.url}/spa/x`, { headers: { origin, cookie: session.jar.header() } });
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
      const own = await agentLogin(shroud.url, origin);
      const forged = own.jar.with('shroud-at', own.jar.get('shroud-auth'));
      const seen = api.seen.length;
      const asked = await introspections();
      for (const method of ['GET', 'POST']) {
        const response = await fetch(`${shroud.url}/spa/orders`, {
          method,
          headers: { origin, cookie: forged.header(), 'x-shroud-csrf': own.csrf },
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
