// Token-handler sessions against the real dev IdP (oidc-provider), without a browser: an access-token
// cookie taken before a refresh stops working at once after logout, and oidc-provider's own back-channel
// logout tokens (with their `jti`) are taken and end the session.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Stack, agentLogin, freePort, hexKey, request, signingKeyFile, tokenHandlerSettings, toml } from './harness.mjs';

describe('token-handler sessions against oidc-provider', () => {
  const stack = new Stack('sessions');
  let idp;
  let api;
  let shroud;
  let origin;

  before(async () => {
    const port = await freePort();
    origin = `http://127.0.0.1:${await freePort()}`;
    idp = await stack.idp({ spaOrigins: [origin], backchannelUri: `http://127.0.0.1:${port}/oauth-agent/backchannel-logout` });
    api = await stack.upstream();
    const config = {
      server: { listen: `127.0.0.1:${port}`, workers: 1 },
      issuer: { url: idp.issuer },
      introspection: { client_id: 'gateway', client_secret: 'gateway-secret', response: 'rfc9701' },
      phantom: { signing_key_file: await signingKeyFile(stack.name) },
      cache: { backend: 'memory' },
      token_handler: tokenHandlerSettings(origin, hexKey()),
      routes: [{ path_prefix: '/api', upstream: api.url, credentials: 'cookie', required_scopes: ['read'] }],
    };
    shroud = await stack.shroud('shroud', port, toml(config));
  });

  after(async () => {
    await stack.stop();
  });

  /** A call to Shroud as the SPA makes it: Origin, cookies, the CSRF header once known. */
  async function call(session, method, path, body) {
    const headers = { origin, cookie: session.jar.header() };
    if (session.csrf) headers['x-shroud-csrf'] = session.csrf;
    if (body) headers['content-type'] = 'application/json';
    const response = await request(`${shroud.url}${path}`, { method, headers, body: body && JSON.stringify(body) });
    session.jar.absorb(response);
    return response;
  }

  /** A login through the IdP's automatic interaction, with the user's `sub` from the agent's claims. */
  async function login() {
    const session = await agentLogin(shroud.url, origin);
    const claims = await call(session, 'GET', '/oauth-agent/claims');
    assert.equal(claims.status, 200, claims.text);
    session.sub = claims.json().sub;
    return session;
  }

  test('logout ends an access-token cookie taken before a refresh, at once', async () => {
    const session = await login();
    assert.equal((await call(session, 'GET', '/api/first')).status, 200);
    const old = session.jar.cookies.get('shroud-at');
    assert.equal((await call(session, 'POST', '/oauth-agent/refresh')).status, 204);
    assert.notEqual(session.jar.cookies.get('shroud-at'), old, 'a new access-token cookie');
    assert.equal((await call(session, 'POST', '/oauth-agent/logout')).status, 200);
    const hits = api.seen.length;
    const stale = await request(`${shroud.url}/api/stale`, { headers: { origin, cookie: `shroud-at=${old}` } });
    assert.equal(stale.status, 401, stale.text);
    assert.equal(stale.json().code, 'invalid_token');
    assert.equal(api.seen.length, hits, 'nothing forwarded');
  });

  test("oidc-provider's back-channel logout tokens are taken and end the session", async () => {
    const session = await login();
    assert.equal((await call(session, 'GET', '/api/before')).status, 200);
    await request(`${idp.issuer}/_test/stats/reset`, { method: 'POST' });
    const sent = await request(`${idp.issuer}/_test/logout-user`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sub: session.sub, keepTokens: true }),
    });
    assert.equal(sent.status, 200, sent.text);
    const stats = (await request(`${idp.issuer}/_test/stats`)).json();
    assert.ok(stats.backchannelLogouts.sent >= 1, JSON.stringify(stats));
    assert.equal(stats.backchannelLogouts.failed, 0, 'Shroud answered 200 to every logout token');
    const hits = api.seen.length;
    assert.equal((await call(session, 'GET', '/api/after')).status, 401, 'the session ended');
    assert.equal(api.seen.length, hits);
  });
});
