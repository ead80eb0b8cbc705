// Test harness for the end-to-end suite: real processes on free loopback ports (redis-server, the dev IdP,
// Shroud's binary), an in-process upstream API, and clean-up. Logs go to artifacts/e2e/ for debugging.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = path.join(ROOT, 'artifacts', 'e2e');
fs.mkdirSync(ARTIFACTS, { recursive: true });

const SHROUD_BIN = process.env.SHROUD_BIN || path.join(ROOT, 'target', 'debug', 'shroud');

/** A free TCP port on 127.0.0.1. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * An HTTP(S) request that can trust a private CA (`ca`, PEM), which `fetch` cannot without undici's Agent.
 * Resolves to `{ status, headers, text, json() }`.
 */
export function request(url, { method = 'GET', headers = {}, body, ca } = {}) {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(target, { method, headers, ca, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${url} timed out`)));
    if (body) req.write(body);
    req.end();
  });
}

/** Polls `check` until it returns truthy or `timeoutMs` passes. */
export async function waitFor(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** Everything started by one test file, stopped by `stop()`. */
export class Stack {
  constructor(name) {
    this.name = name;
    this.children = [];
    this.servers = [];
    this.logs = [];
  }

  /** Starts a process whose output goes to artifacts/e2e/<name>-<label>.log. */
  spawn(label, command, args, env = {}) {
    const logFile = path.join(ARTIFACTS, `${this.name}-${label}.log`);
    const out = fs.openSync(logFile, 'w');
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', out, out] });
    child.on('exit', () => fs.closeSync(out));
    this.children.push(child);
    this.logs.push(logFile);
    child.logFile = logFile;
    return child;
  }

  async redis() {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shroud-e2e-redis-'));
    this.spawn('redis', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
    await waitFor(() => ping(port), 10000, 'redis-server');
    return { port, url: `redis://127.0.0.1:${port}` };
  }

  /**
   * The dev IdP (scripts/dev-idp) with redirect URIs for the given SPA origins. `env` adds DEV_IDP_*
   * settings; with DEV_IDP_TLS_CERT it serves HTTPS, and `ca` (PEM) is trusted to reach it.
   */
  async idp({ spaOrigins, backchannelUri, accessTtl = 300, env = {}, ca }) {
    const port = await freePort();
    const issuer = `${env.DEV_IDP_TLS_CERT ? 'https' : 'http'}://127.0.0.1:${port}`;
    const child = this.spawn('idp', process.execPath, ['scripts/dev-idp/index.js'], {
      DEV_IDP_PORT: String(port),
      DEV_IDP_ISSUER: issuer,
      DEV_IDP_WEB_REDIRECT_URIS: spaOrigins.map((o) => `${o}/callback`).join(','),
      DEV_IDP_POST_LOGOUT_URIS: spaOrigins.map((o) => `${o}/`).join(','),
      DEV_IDP_BACKCHANNEL_URI: backchannelUri,
      DEV_IDP_ACCESS_TTL: String(accessTtl),
      ...env,
    });
    await waitFor(() => fs.readFileSync(child.logFile, 'utf8').includes('dev-idp listening'), 20000, 'the dev IdP');
    const discovery = (await request(`${issuer}/.well-known/openid-configuration`, { ca })).json();
    return { port, issuer, discovery, child };
  }

  /** An upstream API that records what it receives and answers with the decoded JWT claims. */
  async upstream() {
    const seen = [];
    const server = http.createServer((req, res) => {
      const auth = req.headers.authorization || '';
      const jwt = auth.startsWith('Bearer ') ? auth.slice(7) : null;
      seen.push({ method: req.method, url: req.url, headers: req.headers, jwt });
      let claims = null;
      try {
        claims = jwt ? JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) : null;
      } catch {
        claims = null;
      }
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `hello ${claims?.sub ?? 'nobody'}`, scope: claims?.scope ?? null }));
    });
    const port = await freePort();
    await new Promise((r) => server.listen(port, '127.0.0.1', r));
    this.servers.push(server);
    return { port, url: `http://127.0.0.1:${port}`, seen };
  }

  /** A static server for the example SPA on its own origin, pointing it at Shroud's absolute URLs. */
  async spaServer(shroudUrl) {
    const dir = path.join(ROOT, 'examples', 'spa');
    const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
    const server = http.createServer((req, res) => {
      const pathname = new URL(req.url, 'http://x').pathname;
      if (pathname === '/config.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(`window.SHROUD_CONFIG = ${JSON.stringify({ agentBase: `${shroudUrl}/oauth-agent`, apiBase: `${shroudUrl}/api` })};`);
        return;
      }
      const name = ['/', '/callback'].includes(pathname) ? 'index.html' : path.basename(pathname);
      const file = path.join(dir, name);
      if (!fs.existsSync(file)) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
      res.end(fs.readFileSync(file));
    });
    const port = await freePort();
    await new Promise((r) => server.listen(port, '127.0.0.1', r));
    this.servers.push(server);
    return { port, origin: `http://127.0.0.1:${port}` };
  }

  /**
   * Shroud's binary with a TOML configuration; waits until /readyz answers 200. With `ca` (PEM), Shroud
   * serves HTTPS under a certificate of that CA.
   */
  async shroud(label, port, tomlText, { ca } = {}) {
    const file = path.join(ARTIFACTS, `${this.name}-${label}.toml`);
    fs.writeFileSync(file, tomlText);
    const child = this.spawn(label, SHROUD_BIN, ['serve', '--config', file], { RUST_LOG: 'info' });
    const url = `${ca ? 'https' : 'http'}://127.0.0.1:${port}`;
    await waitFor(async () => (await request(`${url}/readyz`, { ca })).status === 200, 20000, `shroud ${label} ready`);
    return { url, child };
  }

  async stop() {
    for (const server of this.servers) server.close();
    for (const child of this.children) {
      if (child.exitCode === null) child.kill('SIGTERM');
    }
    await sleep(200);
    for (const child of this.children) {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }

  /** Everything every process of this stack logged. */
  allLogs() {
    return this.logs.map((f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '')).join('\n');
  }
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => resolve(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
  });
}

/** Renders a TOML value (strings, numbers, booleans, arrays of scalars). */
function value(v) {
  if (Array.isArray(v)) return `[${v.map(value).join(', ')}]`;
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

const isTable = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Renders a configuration object: top-level tables (and their sub-tables), and `routes` as [[routes]]. */
export function toml(config) {
  const lines = [];
  const table = (name, body) => {
    lines.push(`[${name}]`);
    for (const [k, v] of Object.entries(body)) if (!isTable(v)) lines.push(`${k} = ${value(v)}`);
    lines.push('');
    for (const [k, v] of Object.entries(body)) if (isTable(v)) table(`${name}.${k}`, v);
  };
  for (const [section, body] of Object.entries(config)) {
    if (section === 'routes') continue;
    table(section, body);
  }
  for (const route of config.routes || []) {
    lines.push('[[routes]]');
    for (const [k, v] of Object.entries(route)) lines.push(`${k} = ${value(v)}`);
    lines.push('');
  }
  return lines.join('\n');
}

/** A fresh 64-hex key. */
export function hexKey() {
  return [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** A phantom signing key file made with Shroud's own keygen. */
export async function signingKeyFile(stackName) {
  const file = path.join(ARTIFACTS, `${stackName}-phantom.pem`);
  const child = spawn(SHROUD_BIN, ['keygen', '--phantom-key', 'es256']);
  const chunks = [];
  child.stdout.on('data', (c) => chunks.push(c));
  await new Promise((r) => child.on('exit', r));
  fs.writeFileSync(file, Buffer.concat(chunks));
  return file;
}

/** Cookies by name, as a browser keeps them for one host (paths ignored), from `fetch` or `request` answers. */
export class CookieJar {
  constructor(entries = []) {
    this.cookies = new Map(entries);
  }

  /** Takes the answer's `Set-Cookie` lines; a cleared cookie (empty value or `Max-Age=0`) is dropped. */
  absorb(response) {
    const lines = typeof response.headers.getSetCookie === 'function'
      ? response.headers.getSetCookie()
      : [response.headers['set-cookie'] ?? []].flat();
    for (const line of lines) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || attrs.some((a) => a.trim().toLowerCase() === 'max-age=0')) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  get(name) {
    return this.cookies.get(name);
  }

  /** A copy with `name` set to `value`. */
  with(name, value) {
    const copy = new CookieJar(this.cookies);
    copy.cookies.set(name, value);
    return copy;
  }

  /** The `Cookie` header value. */
  header() {
    return [...this.cookies].map(([n, v]) => `${n}=${v}`).join('; ');
  }
}

/** `[token_handler]` for the dev IdP's `webapp` client and an SPA at `origin`, plus `extra` settings. */
export function tokenHandlerSettings(origin, cookieKey, extra = {}) {
  return {
    enabled: true,
    client_id: 'webapp',
    client_secret: 'webapp-secret',
    redirect_uri: `${origin}/callback`,
    post_logout_redirect_uri: `${origin}/`,
    scope: 'openid profile read',
    trusted_web_origins: [origin],
    cookie_encryption_keys: [cookieKey],
    cookie_secure: false,
    ...extra,
  };
}

/**
 * Logs in through Shroud's OAuth Agent without a browser: login/start, the dev IdP's automatic interaction
 * (its redirects followed with its own cookies), login/end. Resolves to `{ jar, csrf }`.
 */
export async function agentLogin(shroudUrl, origin) {
  const jar = new CookieJar();
  const start = await request(`${shroudUrl}/oauth-agent/login/start`, { method: 'POST', headers: { origin } });
  if (start.status !== 200) throw new Error(`login/start answered ${start.status}: ${start.text}`);
  jar.absorb(start);
  const idpJar = new CookieJar();
  let next = start.json().authorizationRequestUrl;
  for (let hop = 0; hop < 12 && !next.startsWith(`${origin}/callback`); hop += 1) {
    const response = await request(next, { headers: { cookie: idpJar.header() } });
    idpJar.absorb(response);
    if (![302, 303].includes(response.status)) throw new Error(`${response.status} from the IdP: ${response.text}`);
    next = new URL(response.headers.location, next).href;
  }
  if (!next.startsWith(`${origin}/callback`)) throw new Error('the IdP did not send the browser back with a code');
  const end = await request(`${shroudUrl}/oauth-agent/login/end`, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/json', cookie: jar.header() },
    body: JSON.stringify({ pageUrl: next }),
  });
  if (end.status !== 200 || end.json().isLoggedIn !== true) throw new Error(`login/end answered ${end.status}: ${end.text}`);
  jar.absorb(end);
  return { jar, csrf: end.json().csrf };
}
