#!/usr/bin/env node
// Shroud's development authorization server. See README.md beside this file.
//
//   node scripts/dev-idp/index.js
//
// Prints `dev-idp listening on <issuer>` on stdout once it accepts connections; logs to stderr.
import { createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const HOST = '127.0.0.1';

function fail(message) {
  process.stderr.write(`dev-idp: ${message}\n`);
  process.exit(2);
}

function list(value, fallback) {
  const items = (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return items.length ? items : fallback;
}

function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) fail(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

function readFile(name) {
  try {
    return fs.readFileSync(process.env[name]);
  } catch (err) {
    return fail(`${name}: cannot read ${process.env[name]} (${err.message})`);
  }
}

/** HTTPS (DEV_IDP_TLS_CERT + DEV_IDP_TLS_KEY), optionally asking clients for certificates (DEV_IDP_TLS_CLIENT_CA). */
function tlsSettings(env) {
  if (!env.DEV_IDP_TLS_CERT && !env.DEV_IDP_TLS_KEY) {
    if (env.DEV_IDP_TLS_CLIENT_CA) fail('DEV_IDP_TLS_CLIENT_CA needs DEV_IDP_TLS_CERT and DEV_IDP_TLS_KEY');
    return undefined;
  }
  if (!env.DEV_IDP_TLS_CERT || !env.DEV_IDP_TLS_KEY) fail('DEV_IDP_TLS_CERT and DEV_IDP_TLS_KEY go together');
  const tls = { cert: readFile('DEV_IDP_TLS_CERT'), key: readFile('DEV_IDP_TLS_KEY') };
  if (env.DEV_IDP_TLS_CLIENT_CA) tls.ca = readFile('DEV_IDP_TLS_CLIENT_CA');
  return tls;
}

/** The public JWK of DEV_IDP_GATEWAY_JWT_KEY (a PEM public or private key), for the private_key_jwt client. */
function gatewayJwk(env) {
  if (!env.DEV_IDP_GATEWAY_JWT_KEY) return undefined;
  try {
    return createPublicKey(readFile('DEV_IDP_GATEWAY_JWT_KEY')).export({ format: 'jwk' });
  } catch (err) {
    return fail(`DEV_IDP_GATEWAY_JWT_KEY: not a PEM key (${err.message})`);
  }
}

function settings() {
  const env = process.env;
  let port = 9090;
  if (env.DEV_IDP_PORT !== undefined && env.DEV_IDP_PORT !== '') {
    port = Number(env.DEV_IDP_PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`DEV_IDP_PORT must be a port number, got ${JSON.stringify(env.DEV_IDP_PORT)}`);
  }
  const user = (env.DEV_IDP_USER || 'alice').trim();
  if (!user) fail('DEV_IDP_USER must not be empty');
  return {
    port,
    issuer: env.DEV_IDP_ISSUER ? env.DEV_IDP_ISSUER.replace(/\/+$/, '') : undefined,
    webRedirectUris: list(env.DEV_IDP_WEB_REDIRECT_URIS, ['http://127.0.0.1:8080/callback']),
    postLogoutUris: list(env.DEV_IDP_POST_LOGOUT_URIS, ['http://127.0.0.1:8080/']),
    backchannelUri: env.DEV_IDP_BACKCHANNEL_URI || 'http://127.0.0.1:8080/oauth-agent/backchannel-logout',
    accessTtl: positiveInt('DEV_IDP_ACCESS_TTL', 300),
    user,
    tls: tlsSettings(env),
    gatewayJwk: gatewayJwk(env),
    mtlsSubjectDn: (env.DEV_IDP_MTLS_SUBJECT_DN || 'CN=gateway-mtls').trim(),
  };
}

async function loadIdp() {
  try {
    return (await import('./lib/idp.js')).createIdp;
  } catch (err) {
    if (err.code === 'ERR_MODULE_NOT_FOUND' && /oidc-provider|jose/.test(err.message)) {
      fail(`dependencies missing: run \`npm ci --prefix ${new URL('.', import.meta.url).pathname}\` first (${err.message})`);
    }
    throw err;
  }
}

async function main() {
  const options = settings();
  const createIdp = await loadIdp();
  const log = (line) => process.stderr.write(`${new Date().toISOString()} dev-idp ${line}\n`);

  // Listen first (DEV_IDP_PORT=0 picks a free port), then build the provider for the actual issuer.
  let handler = (req, res) => {
    res.statusCode = 503;
    res.end('starting');
  };
  const listener = (req, res) => handler(req, res);
  // With a client CA, clients are asked for a certificate but not required to send one: oidc-provider
  // decides per client (tls_client_auth), as a production server would.
  const server = options.tls
    ? https.createServer({ ...options.tls, requestCert: !!options.tls.ca, rejectUnauthorized: false }, listener)
    : http.createServer(listener);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address();
  const issuer = options.issuer || `${options.tls ? 'https' : 'http'}://${HOST}:${port}`;

  const idp = await createIdp({ ...options, issuer, log });
  handler = idp.provider.callback();

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: shutting down`);
    idp.close();
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  log(`issuer ${issuer}, user ${options.user}, access token TTL ${options.accessTtl}s, `
    + `redirect_uris ${options.webRedirectUris.join(' ')}, back-channel logout ${options.backchannelUri}`);
  const extra = clientsNote(options);
  if (extra) log(extra);
  process.stdout.write(`dev-idp listening on ${issuer}\n`);
}

function clientsNote(options) {
  const notes = [];
  if (options.gatewayJwk) notes.push('gateway-jwt (private_key_jwt)');
  if (options.tls?.ca) notes.push(`gateway-mtls (tls_client_auth, ${options.mtlsSubjectDn})`);
  return notes.length ? `extra introspection clients: ${notes.join(', ')}` : '';
}

main().catch((err) => {
  process.stderr.write(`dev-idp: ${err.stack || err}\n`);
  process.exit(1);
});
