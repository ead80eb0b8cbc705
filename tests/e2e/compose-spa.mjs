// The example SPA against an already running demo (scripts/container-test.sh runs it against
// docker-compose.yml): log in through the dev IdP, call the API, log out, in headless Chromium; the page
// never holds a token in document.cookie or web storage. Not a node --test file: run it with node.
//   node tests/e2e/compose-spa.mjs [http://127.0.0.1:8080]
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const origin = process.argv[2] || 'http://127.0.0.1:8080';
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const noTokenInPage = async () => {
    const exposed = await page.evaluate(() => document.cookie + JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    assert.equal(exposed, '{}{}', 'no cookie readable by the page, nothing in web storage');
  };

  await page.goto(`${origin}/`);
  await page.locator('#status', { hasText: 'Logged out' }).waitFor({ timeout: 15000 });
  await page.click('#login');
  await page.locator('#status', { hasText: 'Logged in as' }).waitFor({ timeout: 15000 });
  assert.equal(new URL(page.url()).search, '', 'code and state removed from the address bar');
  const at = (await context.cookies()).find((c) => c.name === 'shroud-at');
  assert.ok(at?.httpOnly && at.sameSite === 'Strict', 'the access-token cookie is HttpOnly and SameSite=Strict');
  await noTokenInPage();
  console.log('ok: SPA login through the dev IdP');

  await page.click('#call-api');
  await page.locator('#api', { hasText: 'hello alice' }).waitFor({ timeout: 15000 });
  const api = await page.locator('#api').textContent();
  assert.match(api, /"iss":\s*"https:\/\/shroud\.local"/, 'the API saw the phantom JWT of Shroud');
  console.log('ok: SPA API call (the API saw a phantom JWT)');

  await page.click('#logout');
  await page.locator('#status', { hasText: 'Logged out' }).waitFor({ timeout: 15000 });
  const left = (await context.cookies()).filter((c) => c.name.startsWith('shroud-'));
  assert.deepEqual(left.map((c) => c.name), [], 'every token-handler cookie cleared');
  console.log('ok: SPA logout (every token-handler cookie cleared)');
} finally {
  await browser.close();
}
