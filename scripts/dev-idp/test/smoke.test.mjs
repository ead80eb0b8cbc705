// Smoke test of the development authorization server, over HTTP against a child process.
//   node --test scripts/dev-idp/test/
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

const INDEX = fileURLToPath(new URL('../index.js', import.meta.url));
const REDIRECT_URI = 'http://127.0.0.1:18080/callback';
const POST_LOGOUT_URI = 'http://127.0.0.1:18080/';

let idp; // child process
let stderr = '';
let issuer;
let discovery;
let JWKS;
let receiver; // back-channel logout receiver
const logoutTokens = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const GATEWAY = basic('gateway', 'gateway-secret');
const DEMO = basic('demo-client', 'demo-client-secret');
const WEBAPP = basic('webapp', 'webapp-secret');

function form(fields) {
  return new URLSearchParams(fields).toString();
}

async function post(path, fields, headers = {}) {
  return fetch(`${issuer}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: form(fields),
  });
}

async function clientCredentialsToken(scope = 'read write') {
  const res = await post('/token', { grant_type: 'client_credentials', scope }, { authorization: DEMO });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

async function introspect(token, accept, auth = GATEWAY) {
  return post('/token/introspection', { token }, { authorization: auth, accept });
}

async function stats() {
  return (await fetch(`${issuer}/_test/stats`)).json();
}

/** A browser-like cookie jar: name -> value (paths ignored: the IdP's cookie names are all distinct). */
class Jar {
  constructor() { this.cookies = new Map(); }

  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=.*1970/i.test(a)) || value === '';
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header() {
    return [...this.cookies].map(([n, v]) => `${n}=${v}`).join('; ');
  }
}

/** Follows redirects by hand (cookies kept) until a Location on `stopAt`; returns that URL and the hops. */
async function browse(url, jar, stopAt, init = {}) {
  let next = url;
  let options = init;
  for (let hop = 0; hop < 10; hop += 1) {
    const res = await fetch(next, {
      redirect: 'manual',
      ...options,
      headers: { cookie: jar.header(), ...options.headers },
    });
    jar.store(res);
    const location = res.headers.get('location');
    if (!location) {
      return { url: next, res, hops: hop };
    }
    const target = new URL(location, next).href;
    await res.arrayBuffer();
    if (target.startsWith(stopAt)) return { url: target, res, hops: hop + 1 };
    next = target;
    options = {};
  }
  throw new Error('too many redirects');
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

function authorizeUrl({ challenge, state, nonce, scope = 'openid profile email read', prompt }) {
  const url = new URL(discovery.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: 'webapp',
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(prompt ? { prompt } : {}),
  }).toString();
  return url.href;
}

/** Runs the whole code flow in `jar`; returns the token response and the number of redirects seen. */
async function login(jar, opts = {}) {
  const { verifier, challenge } = pkce();
  const state = randomBytes(8).toString('hex');
  const nonce = randomBytes(8).toString('hex');
  const { url, hops } = await browse(authorizeUrl({ challenge, state, nonce, ...opts }), jar, REDIRECT_URI);
  const callback = new URL(url);
  assert.equal(callback.searchParams.get('state'), state);
  assert.equal(callback.searchParams.get('iss'), issuer);
  const code = callback.searchParams.get('code');
  assert.ok(code, `no code in ${url}`);

  const res = await post('/token', {
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier,
  }, { authorization: WEBAPP });
  assert.equal(res.status, 200, await res.clone().text());
  const tokens = await res.json();
  const { payload } = await jwtVerify(tokens.id_token, JWKS, { issuer, audience: 'webapp' });
  assert.equal(payload.nonce, nonce);
  assert.equal(payload.sub, 'alice');
  return { tokens, hops, idToken: payload };
}

before(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      logoutTokens.push(new URLSearchParams(body).get('logout_token'));
      res.statusCode = 200;
      res.end();
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));

  const port = await freePort();
  idp = spawn(process.execPath, [INDEX], {
    env: {
      ...process.env,
      DEV_IDP_PORT: String(port),
      DEV_IDP_WEB_REDIRECT_URIS: `http://127.0.0.1:18080/other,${REDIRECT_URI}`,
      DEV_IDP_POST_LOGOUT_URIS: POST_LOGOUT_URI,
      DEV_IDP_BACKCHANNEL_URI: `http://127.0.0.1:${receiver.address().port}/oauth-agent/backchannel-logout`,
      DEV_IDP_ACCESS_TTL: '120',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  idp.stderr.on('data', (c) => { stderr += c; });
  issuer = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`dev-idp did not start:\n${stderr}`)), 10_000);
    idp.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /^dev-idp listening on (\S+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    idp.once('exit', (code) => reject(new Error(`dev-idp exited with ${code}:\n${stderr}`)));
  });
  assert.equal(issuer, `http://127.0.0.1:${port}`);
  discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  JWKS = createLocalJWKSet(await (await fetch(discovery.jwks_uri)).json());
});

after(async () => {
  if (idp && idp.exitCode === null) idp.kill('SIGKILL');
  receiver?.close();
});

test('discovery: issuer, endpoints and features', async () => {
  assert.equal(discovery.issuer, issuer);
  assert.equal(discovery.introspection_endpoint, `${issuer}/token/introspection`);
  assert.equal(discovery.revocation_endpoint, `${issuer}/token/revocation`);
  assert.equal(discovery.end_session_endpoint, `${issuer}/session/end`);
  assert.equal(discovery.token_endpoint, `${issuer}/token`);
  assert.equal(discovery.authorization_endpoint, `${issuer}/auth`);
  assert.equal(discovery.userinfo_endpoint, `${issuer}/me`);
  assert.equal(discovery.backchannel_logout_supported, true);
  assert.equal(discovery.backchannel_logout_session_supported, true);
  assert.ok(discovery.introspection_signing_alg_values_supported.includes('ES256'));
  assert.deepEqual(discovery.code_challenge_methods_supported, ['S256']);
  for (const s of ['openid', 'profile', 'email', 'read', 'write', 'offline_access']) {
    assert.ok(discovery.scopes_supported.includes(s), s);
  }
  const jwks = await (await fetch(discovery.jwks_uri)).json();
  assert.deepEqual(jwks.keys.map((k) => k.alg).sort(), ['ES256', 'RS256']);
  assert.ok(jwks.keys.every((k) => k.kid && !k.d));
});

test('client credentials: opaque token, three introspection modes, revocation', async () => {
  const { access_token: token, scope, expires_in: expiresIn } = await clientCredentialsToken();
  assert.equal(scope, 'read write');
  assert.equal(expiresIn, 120);
  assert.equal(token.split('.').length, 1, 'opaque, not a JWT');

  // RFC 7662 JSON (Basic auth)
  let res = await introspect(token, 'application/json');
  assert.equal(res.status, 200);
  let body = await res.json();
  assert.equal(body.active, true);
  assert.equal(body.scope, 'read write');
  assert.equal(body.client_id, 'demo-client');
  assert.equal(body.sub, 'demo-client');

  // client_secret_post works too
  res = await post('/token/introspection', { token, client_id: 'gateway', client_secret: 'gateway-secret' });
  assert.equal((await res.json()).active, true);

  // RFC 9701
  res = await introspect(token, 'application/token-introspection+jwt');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/token-introspection\+jwt/);
  let jwt = await res.text();
  assert.equal(decodeProtectedHeader(jwt).typ, 'token-introspection+jwt');
  const { payload: answer } = await jwtVerify(jwt, JWKS, {
    issuer, audience: 'gateway', typ: 'token-introspection+jwt',
  });
  assert.equal(answer.token_introspection.active, true);
  assert.equal(answer.token_introspection.scope, 'read write');
  assert.ok(answer.iat);

  // Curity application/jwt
  res = await introspect(token, 'application/jwt');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/jwt/);
  jwt = await res.text();
  const { payload: at, protectedHeader } = await jwtVerify(jwt, JWKS, { issuer, typ: 'at+jwt' });
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(at.sub, 'demo-client');
  assert.equal(at.client_id, 'demo-client');
  assert.equal(at.scope, 'read write');
  assert.equal(at.exp, body.exp);
  assert.ok(at.jti && at.jti !== token);
  assert.ok(!jwt.includes(token));

  // wrong credentials
  res = await introspect(token, 'application/jwt', basic('gateway', 'wrong'));
  assert.equal(res.status, 401);
  res = await introspect(token, 'application/json', basic('gateway', 'wrong'));
  assert.equal(res.status, 401);

  // revoke (as the owning client, at the revocation endpoint)
  res = await post('/token/revocation', { token, token_type_hint: 'access_token' }, { authorization: DEMO });
  assert.equal(res.status, 200);
  res = await introspect(token, 'application/json');
  assert.deepEqual(await res.json(), { active: false });
  res = await introspect(token, 'application/jwt');
  assert.equal(res.status, 204);
  res = await introspect(token, 'application/token-introspection+jwt');
  ({ payload: body } = await jwtVerify(await res.text(), JWKS, { issuer, audience: 'gateway' }));
  assert.equal(body.token_introspection.active, false);

  // the unauthenticated test helper revokes too
  const other = (await clientCredentialsToken('read')).access_token;
  res = await post('/_test/revoke', { token: other });
  assert.deepEqual(await res.json(), { revoked: true, kind: 'ClientCredentials' });
  assert.equal((await introspect(other, 'application/jwt')).status, 204);
});

test('authorization code + PKCE with auto-login, refresh rotation, userinfo', async () => {
  const jar = new Jar();
  const { tokens, hops, idToken } = await login(jar);
  assert.equal(hops, 3, 'auth -> interaction -> auth/resume -> redirect_uri');
  assert.equal(tokens.access_token.split('.').length, 1, 'opaque access token');
  assert.ok(tokens.refresh_token, 'refresh token without offline_access');
  assert.equal(tokens.scope, 'openid profile email read');
  assert.ok(idToken.sid);

  // userinfo
  let res = await fetch(discovery.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(res.status, 200);
  const userinfo = await res.json();
  assert.equal(userinfo.sub, 'alice');
  assert.equal(userinfo.email, 'alice@example.com');
  assert.deepEqual(userinfo.roles, ['reader']);

  // gateway introspects webapp's token
  res = await introspect(tokens.access_token, 'application/jwt');
  assert.equal(res.status, 200);
  const { payload } = await jwtVerify(await res.text(), JWKS, { issuer, typ: 'at+jwt' });
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.client_id, 'webapp');
  assert.equal(payload.scope, 'openid profile email read');

  // refresh rotates
  res = await post('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, { authorization: WEBAPP });
  assert.equal(res.status, 200, await res.clone().text());
  const refreshed = await res.json();
  assert.ok(refreshed.access_token && refreshed.access_token !== tokens.access_token);
  assert.ok(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token);
  assert.ok(refreshed.id_token);
  assert.equal((await (await introspect(refreshed.access_token, 'application/json')).json()).active, true);
  // the new refresh token refreshes again
  res = await post('/token', { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token }, { authorization: WEBAPP });
  assert.equal(res.status, 200);
  assert.ok((await stats()).refreshGrants >= 2);

  // PKCE is required for webapp
  const url = new URL(authorizeUrl({ challenge: 'x', state: 's', nonce: 'n' }));
  url.searchParams.delete('code_challenge');
  url.searchParams.delete('code_challenge_method');
  const { url: errorUrl } = await browse(url.href, new Jar(), REDIRECT_URI);
  assert.equal(new URL(errorUrl).searchParams.get('error'), 'invalid_request');

  // a second login in the same browser: no interaction needed; with prompt=login it goes through one again
  const again = await login(jar);
  assert.equal(again.hops, 1);
  // (OpenID Connect: offline_access is dropped unless prompt includes consent; a refresh token comes anyway)
  const forced = await login(jar, { prompt: 'login', scope: 'openid read offline_access' });
  assert.equal(forced.hops, 3);
  assert.equal(forced.tokens.scope, 'openid read');
  assert.ok(forced.tokens.refresh_token);
  const consented = await login(jar, { prompt: 'consent', scope: 'openid read offline_access' });
  assert.equal(consented.hops, 3);
  assert.equal(consented.tokens.scope, 'openid read offline_access');
  assert.ok(consented.tokens.refresh_token);
});

test('RP-initiated logout confirms itself and sends a back-channel logout token', async () => {
  const jar = new Jar();
  const { tokens, idToken } = await login(jar);
  logoutTokens.length = 0;

  const url = new URL(discovery.end_session_endpoint);
  url.search = new URLSearchParams({
    id_token_hint: tokens.id_token, post_logout_redirect_uri: POST_LOGOUT_URI, state: 'bye',
  }).toString();
  let res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
  jar.store(res);
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /\.submit\(\)/, 'the page submits itself');
  // what the page's script does: POST the form (xsrf + logout=yes) to the confirm endpoint
  const action = /<form[^>]*action="([^"]+)"/.exec(html)[1];
  const fields = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)].map((m) => [m[1], m[2]]));
  assert.equal(fields.logout, 'yes');
  res = await fetch(action, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
    body: form(fields),
  });
  assert.equal(res.status, 303, await res.clone().text());
  assert.equal(res.headers.get('location'), `${POST_LOGOUT_URI}?state=bye`);

  assert.equal(logoutTokens.length, 1);
  const { payload, protectedHeader } = await jwtVerify(logoutTokens[0], JWKS, { issuer, audience: 'webapp', typ: 'logout+jwt' });
  assert.equal(protectedHeader.typ, 'logout+jwt');
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.sid, idToken.sid);
  assert.ok(payload.events['http://schemas.openid.net/event/backchannel-logout']);
  assert.equal(payload.nonce, undefined);

  // the session's tokens are gone
  assert.equal((await introspect(tokens.access_token, 'application/jwt')).status, 204);
  res = await post('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, { authorization: WEBAPP });
  assert.equal(res.status, 400);
});

test('/_test/logout-user sends back-channel logout for every session of the user', async () => {
  const first = await login(new Jar());
  const second = await login(new Jar());
  logoutTokens.length = 0;
  const res = await fetch(`${issuer}/_test/logout-user`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub: 'alice' }),
  });
  const report = await res.json();
  assert.equal(res.status, 200);
  assert.ok(report.sessions >= 2);
  assert.equal(report.failed.length, 0);
  const sids = [];
  for (const t of logoutTokens) {
    sids.push((await jwtVerify(t, JWKS, { issuer, audience: 'webapp', typ: 'logout+jwt' })).payload.sid);
  }
  assert.ok(sids.includes(first.idToken.sid) && sids.includes(second.idToken.sid));
  assert.equal((await introspect(first.tokens.access_token, 'application/jwt')).status, 204);
});

test('2000 client-credentials tokens: the first one is still active (no eviction)', async () => {
  const first = (await clientCredentialsToken('read')).access_token;
  const tokens = [first];
  const workers = Array.from({ length: 16 }, async () => {
    while (tokens.length < 2000) {
      tokens.push('pending');
      const { access_token: t } = await clientCredentialsToken('read');
      tokens[tokens.indexOf('pending')] = t;
    }
  });
  await Promise.all(workers);
  assert.equal(new Set(tokens).size, tokens.length);
  const res = await introspect(first, 'application/json');
  const body = await res.json();
  assert.equal(body.active, true);
  assert.equal(body.client_id, 'demo-client');
  assert.ok((await stats()).stored.ClientCredentials >= 2000);
});

test('stats count introspections, revocations and refresh grants', async () => {
  const s = await stats();
  assert.ok(s.introspections >= 10);
  assert.equal(s.introspections, s.introspectionsByMode.json + s.introspectionsByMode.rfc9701 + s.introspectionsByMode.jwt);
  assert.equal(s.revocations, 1);
  assert.ok(s.refreshGrants >= 3);
  const reset = await (await fetch(`${issuer}/_test/stats/reset`, { method: 'POST' })).json();
  assert.equal(reset.introspections, 0);
});

test('logs never contain token values, and SIGTERM exits cleanly', async () => {
  const { access_token: token } = await clientCredentialsToken('read');
  await introspect(token, 'application/jwt');
  const exited = new Promise((resolve) => idp.once('exit', (code, signal) => resolve({ code, signal })));
  idp.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null });
  assert.ok(!stderr.includes(token));
  assert.match(stderr, /POST \/token\/introspection 200/);
});
