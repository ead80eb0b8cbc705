// The token-handler flow in headless Chromium: the example SPA logs in against the dev IdP, shows the
// API's answer, survives an access-token expiry via /refresh, and logs out; the page never holds a token
// in document.cookie or web storage. Two layouts: the SPA served by Shroud (same origin), and the SPA on
// its own origin of the same site (CORS with credentials). Screenshots go to artifacts/e2e/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, Stack, freePort, hexKey, signingKeyFile, sleep, toml } from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ACCESS_TTL = 4;

async function layout(kind) {
  const stack = new Stack(`browser-${kind}`);
  const shroudPort = await freePort();
  const shroudUrl = `http://127.0.0.1:${shroudPort}`;
  const spa = kind === 'same-origin' ? { origin: shroudUrl } : await stack.spaServer(shroudUrl);
  const idp = await stack.idp({
    spaOrigins: [spa.origin],
    backchannelUri: `${shroudUrl}/oauth-agent/backchannel-logout`,
    accessTtl: ACCESS_TTL,
  });
  const api = await stack.upstream();
  const routes = [{ path_prefix: '/api', upstream: api.url, credentials: 'any', required_scopes: ['read'] }];
  if (kind === 'same-origin') routes.push({ path_prefix: '/', static_dir: 'examples/spa', credentials: 'none' });
  const cookieKey = hexKey();
  const signingKey = await signingKeyFile(stack.name);
  const config = {
    server: { listen: `127.0.0.1:${shroudPort}`, workers: 1 },
    issuer: { url: idp.issuer },
    introspection: { client_id: 'gateway', client_secret: 'gateway-secret', response: 'rfc9701' },
    phantom: { signing_key_file: signingKey },
    cache: { backend: 'memory' },
    token_handler: {
      enabled: true,
      client_id: 'webapp',
      client_secret: 'webapp-secret',
      redirect_uri: `${spa.origin}/callback`,
      post_logout_redirect_uri: `${spa.origin}/`,
      scope: 'openid profile read',
      trusted_web_origins: [spa.origin],
      cookie_encryption_keys: [cookieKey],
      cookie_secure: false,
    },
    routes,
  };
  const shroud = await stack.shroud('shroud', shroudPort, toml(config));
  // The key material whose absence from every log the test proves: the cookie key and the body lines of
  // the phantom signing key's PEM.
  const keys = [cookieKey, ...fs.readFileSync(signingKey, 'utf8').split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))];
  return { stack, spa, idp, api, shroud, keys };
}

for (const kind of ['same-origin', 'cross-origin']) {
  describe(`example SPA in headless Chromium, ${kind}`, () => {
    let env;
    let browser;
    let context;
    let page;
    const agentCalls = [];
    const codes = [];
    const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `${kind}-${name}.png`), fullPage: true });

    before(async () => {
      env = await layout(kind);
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
      });
      context = await browser.newContext();
      page = await context.newPage();
      page.on('request', (r) => {
        const code = new URL(r.url()).searchParams.get('code');
        if (code) codes.push(code);
      });
      page.on('response', (r) => {
        if (r.url().includes('/oauth-agent/')) agentCalls.push({ path: new URL(r.url()).pathname, status: r.status() });
      });
    });

    after(async () => {
      await browser?.close();
      await env?.stack.stop();
    });

    async function assertNoTokenInPage() {
      const exposed = await page.evaluate(() => ({
        cookie: document.cookie,
        local: JSON.stringify({ ...localStorage }),
        session: JSON.stringify({ ...sessionStorage }),
      }));
      assert.equal(exposed.cookie, '', 'document.cookie shows nothing: every cookie is HttpOnly');
      assert.equal(exposed.local, '{}', 'localStorage holds nothing');
      assert.equal(exposed.session, '{}', 'sessionStorage holds nothing');
    }

    test('logs in, calls the API, refreshes after expiry, logs out', async () => {
      await page.goto(`${env.spa.origin}/`);
      await page.locator('#status', { hasText: 'Logged out' }).waitFor();
      await shot('1-logged-out');

      await page.click('#login');
      await page.locator('#status', { hasText: 'Logged in as' }).waitFor({ timeout: 15000 });
      assert.equal(new URL(page.url()).search, '', 'code and state removed from the address bar');
      await shot('2-logged-in');
      await assertNoTokenInPage();
      const cookies = await context.cookies();
      const cookieValues = cookies.filter((c) => c.name.startsWith('shroud-')).map((c) => c.value);
      const at = cookies.find((c) => c.name === 'shroud-at');
      assert.ok(at, 'the access-token cookie is set');
      assert.equal(at.httpOnly, true);
      assert.equal(at.sameSite, 'Strict');
      for (const name of ['shroud-auth', 'shroud-id']) {
        assert.equal(cookies.find((c) => c.name === name)?.path, '/oauth-agent', `${name} stays on the agent's path`);
      }

      await page.click('#call-api');
      await page.locator('#api', { hasText: 'hello alice' }).waitFor();
      await shot('3-api-answer');
      const seen = env.api.seen.at(-1);
      assert.ok(seen.jwt && seen.jwt.split('.').length === 3, 'the API received a JWT');
      assert.equal(seen.headers.cookie, undefined, 'the API received no cookies');
      assert.equal(seen.headers['x-shroud-csrf'], undefined, 'nor the CSRF header');
      const apiText = await page.locator('#api').textContent();
      assert.ok(!apiText.includes(seen.jwt), 'the JWT never reaches the page');

      await sleep((ACCESS_TTL + 1.5) * 1000);
      await page.evaluate(() => { document.getElementById('api').textContent = 'waiting'; });
      await page.click('#call-api');
      await page.locator('#api', { hasText: 'hello alice' }).waitFor({ timeout: 15000 });
      const refreshes = agentCalls.filter((c) => c.path.endsWith('/refresh'));
      assert.equal(refreshes.length, 1, 'one refresh after the access token expired');
      assert.equal(refreshes[0].status, 204);
      assert.equal(await page.locator('#error').textContent(), '');
      await shot('4-after-refresh');
      await assertNoTokenInPage();

      await page.click('#logout');
      await page.locator('#status', { hasText: 'Logged out' }).waitFor({ timeout: 15000 });
      await page.waitForURL(`${env.spa.origin}/**`);
      await shot('5-logged-out-again');
      const left = (await context.cookies()).filter((c) => c.name.startsWith('shroud-'));
      assert.deepEqual(left.map((c) => c.name), [], 'every token-handler cookie cleared');

      const logs = env.stack.allLogs();
      assert.ok(codes.length >= 1, 'the authorization code was seen on its way to the SPA');
      for (const value of [...cookieValues, ...codes, ...env.keys, seen.jwt, 'webapp-secret', 'gateway-secret']) {
        assert.ok(!logs.includes(value), 'no cookie, code, token, secret or key in any process log');
      }
    });
  });
}
