// Transport security against the real dev IdP (oidc-provider), everything over HTTPS under a CA made with
// the openssl command for this run: the dev IdP serves HTTPS and asks for client certificates; Shroud serves
// HTTPS, trusts the CA through tls_client.ca_file, and introspects as `gateway-jwt` (private_key_jwt) or as
// `gateway-mtls` (tls_client_auth). A client-credentials token reaches the upstream as a phantom JWT either
// way; a Shroud with the wrong key is refused by the IdP; no key, assertion or token is logged.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { ARTIFACTS, Stack, freePort, request, signingKeyFile, toml } from './harness.mjs';

/** A CA, a server certificate for 127.0.0.1 and a client certificate `CN=gateway-mtls`, made with openssl. */
function makePki(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const file = (name) => path.join(dir, name);
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Shroud E2E CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const issue = (name, subject, extensions) => {
    fs.writeFileSync(file(`${name}.ext`), extensions);
    openssl('req', ...ec, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', subject);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial',
      '-days', '1', '-out', `${name}.pem`, '-extfile', `${name}.ext`);
    return { cert: file(`${name}.pem`), key: file(`${name}-key.pem`) };
  };
  return {
    ca: file('ca.pem'),
    caPem: fs.readFileSync(file('ca.pem')),
    server: issue('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'),
    client: issue('client', '/CN=gateway-mtls', 'extendedKeyUsage=clientAuth\n'),
  };
}

const basic = (id, secret) => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');
const form = { 'content-type': 'application/x-www-form-urlencoded' };

describe('transport security: HTTPS everywhere, private_key_jwt and tls_client_auth at the dev IdP', () => {
  const stack = new Stack('transport');
  const pki = makePki(path.join(ARTIFACTS, 'transport-pki'));
  const ca = pki.caPem;
  let idp;
  let api;
  let gatewayKey;
  const shrouds = {};

  async function startShroud(label, introspection) {
    const port = await freePort();
    const config = {
      server: { listen: `127.0.0.1:${port}`, workers: 1, tls: { cert_file: pki.server.cert, key_file: pki.server.key } },
      issuer: { url: idp.issuer },
      introspection: { response: 'rfc9701', ...introspection },
      phantom: { signing_key_file: await signingKeyFile(`${stack.name}-${label}`) },
      tls_client: { ca_file: pki.ca },
      routes: [{ path_prefix: '/api', upstream: api.url, credentials: 'bearer', required_scopes: ['read'] }],
    };
    return stack.shroud(label, port, toml(config), { ca });
  }

  async function clientCredentialsToken() {
    const response = await request(idp.discovery.token_endpoint, {
      method: 'POST',
      ca,
      headers: { authorization: basic('demo-client', 'demo-client-secret'), ...form },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read' }).toString(),
    });
    assert.equal(response.status, 200, response.text);
    return response.json().access_token;
  }

  const introspections = async () => (await request(`${idp.issuer}/_test/stats`, { ca })).json().introspections;

  before(async () => {
    gatewayKey = await signingKeyFile(`${stack.name}-gateway-jwt`);
    const port = await freePort();
    idp = await stack.idp({
      spaOrigins: [`https://127.0.0.1:${port}`],
      backchannelUri: `https://127.0.0.1:${port}/oauth-agent/backchannel-logout`,
      env: {
        DEV_IDP_TLS_CERT: pki.server.cert,
        DEV_IDP_TLS_KEY: pki.server.key,
        DEV_IDP_TLS_CLIENT_CA: pki.ca,
        DEV_IDP_GATEWAY_JWT_KEY: gatewayKey,
      },
      ca,
    });
    assert.ok(idp.issuer.startsWith('https://'));
    assert.ok(idp.discovery.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
    assert.ok(idp.discovery.token_endpoint_auth_methods_supported.includes('tls_client_auth'));
    api = await stack.upstream();
    shrouds.jwt = await startShroud('shroud-jwt', {
      client_id: 'gateway-jwt', auth_method: 'private_key_jwt', private_key_file: gatewayKey,
    });
    shrouds.mtls = await startShroud('shroud-mtls', {
      client_id: 'gateway-mtls', auth_method: 'tls_client_auth', client_cert_file: pki.client.cert, client_key_file: pki.client.key,
    });
  });

  after(() => stack.stop());

  for (const method of ['jwt', 'mtls']) {
    test(`${method === 'jwt' ? 'private_key_jwt' : 'tls_client_auth'}: an opaque token reaches the API as a phantom JWT`, async () => {
      const shroud = shrouds[method];
      assert.ok(shroud.url.startsWith('https://'), 'Shroud serves HTTPS');
      const token = await clientCredentialsToken();
      const before = await introspections();
      const response = await request(`${shroud.url}/api/orders`, { ca, headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.status, 200, response.text);
      assert.equal(await introspections(), before + 1, 'the IdP authenticated Shroud and answered the introspection');
      const seen = api.seen.at(-1);
      assert.ok(seen.jwt && seen.jwt !== token, 'the upstream got a JWT, never the opaque token');
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      const jwks = (await request(`${shroud.url}/.well-known/jwks.json`, { ca })).json();
      const { payload } = await jwtVerify(seen.jwt, createLocalJWKSet(jwks), { issuer: 'https://shroud.local' });
      assert.equal(payload.client_id, 'demo-client');
      assert.match(payload.scope, /\bread\b/);
    });
  }

  test('a Shroud signing with another key is refused by the IdP (502, never 401)', async () => {
    const otherKey = await signingKeyFile(`${stack.name}-other`);
    const shroud = await startShroud('shroud-wrong-key', {
      client_id: 'gateway-jwt', auth_method: 'private_key_jwt', private_key_file: otherKey,
    });
    const token = await clientCredentialsToken();
    const response = await request(`${shroud.url}/api/x`, { ca, headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 502);
    assert.equal(response.json().code, 'authorization_server_error');
  });

  test('the IdP takes gateway-mtls only with its certificate', async () => {
    const token = await clientCredentialsToken();
    const body = new URLSearchParams({ token, client_id: 'gateway-mtls' }).toString();
    const endpoint = idp.discovery.introspection_endpoint;
    const without = await request(endpoint, { method: 'POST', ca, headers: form, body });
    assert.equal(without.status, 401, without.text);
    const other = makePki(path.join(ARTIFACTS, 'transport-pki-other'));
    const foreign = await requestWithCertificate(endpoint, body, other.client);
    assert.equal(foreign.status, 401, 'a certificate from another CA does not authenticate');
    const own = await requestWithCertificate(endpoint, body, pki.client);
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json().active, true);
  });

  function requestWithCertificate(url, body, { cert, key }) {
    return new Promise((resolve, reject) => {
      const req = https.request(url, {
        method: 'POST', headers: form, ca, cert: fs.readFileSync(cert), key: fs.readFileSync(key), agent: false,
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode, text, json: () => JSON.parse(text) });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  test('no key, assertion or token appears in any log', async () => {
    const token = await clientCredentialsToken();
    await request(`${shrouds.jwt.url}/api/log-check`, { ca, headers: { authorization: `Bearer ${token}` } });
    const logs = stack.allLogs();
    const keyBody = fs.readFileSync(gatewayKey, 'utf8').split('\n')[1];
    assert.ok(!logs.includes(token), 'opaque token in logs');
    assert.ok(!logs.includes(keyBody), 'private key in logs');
    assert.ok(!logs.includes('client_assertion='), 'client assertion in logs');
    assert.ok(!/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/.test(logs), 'a JWT in logs');
  });
});
