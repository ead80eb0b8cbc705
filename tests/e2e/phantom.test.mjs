// Phantom-token flow against the real dev IdP (oidc-provider), in each introspection mode, with Redis:
// a client-credentials token through Shroud reaches the upstream as a JWT that verifies against the right
// JWKS, with the client as its `sub` (RFC 9068 §2.2); a revoked token is refused once its cache entry
// expired; a missing scope is 403.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { Stack, freePort, hexKey, signingKeyFile, sleep, toml } from './harness.mjs';

const basic = (id, secret) => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');

async function clientCredentialsToken(idp, scope) {
  const response = await fetch(idp.discovery.token_endpoint, {
    method: 'POST',
    headers: { authorization: basic('demo-client', 'demo-client-secret'), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  const { access_token: token } = await response.json();
  assert.equal(token.split('.').length, 1, 'the dev IdP issues opaque tokens');
  return token;
}

async function revoke(idp, token) {
  const response = await fetch(idp.discovery.revocation_endpoint, {
    method: 'POST',
    headers: { authorization: basic('demo-client', 'demo-client-secret'), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  assert.equal(response.status, 200);
}

for (const mode of ['rfc9701', 'json', 'jwt']) {
  describe(`phantom flow, ${mode} mode, Redis cache`, () => {
    const stack = new Stack(`phantom-${mode}`);
    let idp;
    let api;
    let shroud;

    before(async () => {
      const redis = await stack.redis();
      const port = await freePort();
      idp = await stack.idp({ spaOrigins: [`http://127.0.0.1:${port}`], backchannelUri: `http://127.0.0.1:${port}/oauth-agent/backchannel-logout` });
      api = await stack.upstream();
      const config = {
        server: { listen: `127.0.0.1:${port}`, workers: 1 },
        issuer: { url: idp.issuer },
        introspection: { client_id: 'gateway', client_secret: 'gateway-secret', response: mode },
        phantom: { signing_key_file: await signingKeyFile(stack.name) },
        cache: { backend: 'redis', redis_url: redis.url, key_secret: hexKey(), max_ttl_seconds: 1 },
        routes: [
          { path_prefix: '/api', upstream: api.url, credentials: 'bearer', required_scopes: ['read'] },
          { path_prefix: '/admin', upstream: api.url, credentials: 'bearer', required_scopes: ['read', 'write'] },
        ],
      };
      shroud = await stack.shroud('shroud', port, toml(config));
    });

    after(() => stack.stop());

    test('an opaque token reaches the API as a JWT that verifies against the right JWKS', async () => {
      const token = await clientCredentialsToken(idp, 'read');
      const response = await fetch(`${shroud.url}/api/orders`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.status, 200);
      const seen = api.seen.at(-1);
      assert.ok(seen.jwt, 'the upstream got a bearer JWT');
      assert.notEqual(seen.jwt, token, 'never the opaque token');
      const jwks = mode === 'jwt' ? idp.discovery.jwks_uri : `${shroud.url}/.well-known/jwks.json`;
      const issuer = mode === 'jwt' ? idp.issuer : 'https://shroud.local';
      const { payload, protectedHeader } = await jwtVerify(seen.jwt, createRemoteJWKSet(new URL(jwks)), { issuer });
      assert.equal(protectedHeader.typ, 'at+jwt');
      assert.equal(payload.client_id, 'demo-client');
      assert.equal(payload.sub, 'demo-client', 'no resource owner: the client is the subject (RFC 9068 §2.2)');
      assert.match(payload.scope, /\bread\b/);
      if (mode !== 'jwt') {
        await assert.rejects(jwtVerify(seen.jwt, createRemoteJWKSet(new URL(idp.discovery.jwks_uri))), 'a phantom JWT is not the IdP’s');
      }
    });

    test('a revoked token is refused once its cache entry expired', async () => {
      const token = await clientCredentialsToken(idp, 'read');
      const call = () => fetch(`${shroud.url}/api/x`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal((await call()).status, 200);
      await revoke(idp, token);
      await sleep(1300);
      const refused = await call();
      assert.equal(refused.status, 401);
      assert.equal((await refused.json()).code, 'invalid_token');
    });

    test('a token without the route’s scope is 403', async () => {
      const token = await clientCredentialsToken(idp, 'read');
      const response = await fetch(`${shroud.url}/admin/x`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.status, 403);
      assert.match(response.headers.get('www-authenticate'), /error="insufficient_scope", scope="read write"/);
      assert.equal((await response.json()).code, 'insufficient_scope');
    });

    test('no token, opaque or JWT, appears in any log', async () => {
      const token = await clientCredentialsToken(idp, 'read');
      await fetch(`${shroud.url}/api/log-check`, { headers: { authorization: `Bearer ${token}` } });
      const jwt = api.seen.at(-1).jwt;
      const logs = stack.allLogs();
      assert.ok(!logs.includes(token), 'opaque token in logs');
      assert.ok(!logs.includes(jwt), 'JWT in logs');
      assert.ok(!logs.includes('gateway-secret'), 'client secret in logs');
    });
  });
}
