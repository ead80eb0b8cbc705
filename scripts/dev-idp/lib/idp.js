// The development authorization server: oidc-provider configured for Shroud's end-to-end tests, plus a
// headless auto-login interaction, Curity-style JWT introspection and a few /_test helpers.
import { X509Certificate } from 'node:crypto';

import Provider from 'oidc-provider';

import { generateSigningKeys } from './keys.js';
import { json, oauthError, readForm, readJson } from './http.js';
import { curityIntrospection, findActiveToken, wantsCurityJwt } from './phantom.js';
import { Store } from './store.js';

export const SCOPES = ['openid', 'profile', 'email', 'read', 'write', 'offline_access'];

const ROUTES = {
  authorization: '/auth',
  token: '/token',
  userinfo: '/me',
  jwks: '/jwks',
  introspection: '/token/introspection',
  revocation: '/token/revocation',
  end_session: '/session/end',
};

const epochTime = () => Math.floor(Date.now() / 1000);

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body, script = '') {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>${body}${script ? `<script>${script}</script>` : ''}</body></html>`;
}

/** Introspection clients: they may introspect (and revoke) any token. */
export const GATEWAYS = ['gateway', 'gateway-jwt', 'gateway-mtls'];

/** The static clients, in oidc-provider's (snake_case) metadata. */
export function clientsFor(options) {
  return [
    {
      client_id: 'gateway',
      client_secret: 'gateway-secret',
      client_name: 'Shroud (introspection)',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic', // client_secret_post is accepted too
      introspection_signed_response_alg: 'ES256',
    },
    {
      client_id: 'demo-client',
      client_secret: 'demo-client-secret',
      client_name: 'Demo API client',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'read write',
    },
    {
      client_id: 'webapp',
      client_secret: 'webapp-secret',
      client_name: 'Web app (Shroud token handler)',
      application_type: 'web',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: options.webRedirectUris,
      post_logout_redirect_uris: options.postLogoutUris,
      backchannel_logout_uri: options.backchannelUri,
      backchannel_logout_session_required: true,
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid profile email read offline_access',
    },
    ...extraGatewayClients(options),
  ];
}

/**
 * Gateways that authenticate without a secret, when configured: `gateway-jwt` (private_key_jwt, with the
 * public JWK given) and `gateway-mtls` (tls_client_auth, over HTTPS with a client CA).
 */
function extraGatewayClients(options) {
  const clients = [];
  const gateway = {
    grant_types: [],
    response_types: [],
    redirect_uris: [],
    introspection_signed_response_alg: 'ES256',
  };
  if (options.gatewayJwk) {
    clients.push({
      ...gateway,
      client_id: 'gateway-jwt',
      client_name: 'Shroud (introspection, private_key_jwt)',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [options.gatewayJwk] },
    });
  }
  if (options.tls?.ca) {
    clients.push({
      ...gateway,
      client_id: 'gateway-mtls',
      client_name: 'Shroud (introspection, tls_client_auth)',
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: options.mtlsSubjectDn,
    });
  }
  return clients;
}

/** The client certificate of the request's TLS connection, if any. */
function peerCertificate(ctx) {
  const raw = ctx.socket?.getPeerCertificate?.()?.raw;
  return raw ? new X509Certificate(raw) : undefined;
}

/** RFC 4514 order (`CN=…,O=…`) of Node's subject (one attribute per line, most general first). */
const subjectDn = (cert) => cert.subject.split('\n').reverse().join(',');

/** oidc-provider's mTLS helpers, for tls_client_auth against the client CA of the HTTPS listener. */
const mTLS = {
  enabled: true,
  tlsClientAuth: true,
  getCertificate: (ctx) => peerCertificate(ctx)?.toString(),
  certificateAuthorized: (ctx) => ctx.socket?.authorized === true,
  certificateSubjectMatches: (ctx, property, expected) => {
    const cert = peerCertificate(ctx);
    return property === 'tls_client_auth_subject_dn' && !!cert && subjectDn(cert) === expected;
  },
};

function account(sub) {
  const name = sub.charAt(0).toUpperCase() + sub.slice(1);
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        name,
        email: `${sub}@example.com`,
        email_verified: true,
        roles: ['reader'],
      };
    },
  };
}

/**
 * Builds the provider. `options`: issuer, user, accessTtl, webRedirectUris, postLogoutUris, backchannelUri,
 * log (a function taking one line).
 */
export async function createIdp(options) {
  const { issuer, user, accessTtl } = options;
  const log = options.log || (() => {});
  const store = new Store();
  const { jwks, es256 } = await generateSigningKeys();
  const clients = clientsFor(options);

  const stats = {
    introspections: 0,
    introspectionsByMode: { json: 0, rfc9701: 0, jwt: 0 },
    revocations: 0,
    refreshGrants: 0,
    tokenRequests: 0,
    backchannelLogouts: { sent: 0, failed: 0 },
  };
  const resetStats = () => {
    stats.introspections = 0;
    stats.introspectionsByMode = { json: 0, rfc9701: 0, jwt: 0 };
    stats.revocations = 0;
    stats.refreshGrants = 0;
    stats.tokenRequests = 0;
    stats.backchannelLogouts = { sent: 0, failed: 0 };
  };

  // gateway may introspect (and revoke) any token; other clients only their own.
  const mayActOn = (callerClientId, token) => GATEWAYS.includes(callerClientId) || token.clientId === callerClientId;

  const configuration = {
    adapter: store.adapterClass(),
    clients,
    jwks,
    findAccount: (ctx, sub) => account(sub),
    claims: {
      openid: ['sub'],
      profile: ['name', 'roles'],
      email: ['email', 'email_verified'],
    },
    scopes: SCOPES,
    responseTypes: ['code'],
    clockTolerance: 5,
    ...(options.tls?.ca ? {
      clientAuthMethods: ['client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'private_key_jwt', 'tls_client_auth', 'none'],
    } : {}),
    routes: ROUTES,
    cookies: {
      // Prefixed so they cannot collide with an application's cookies on the same host (cookies ignore ports).
      names: { session: 'devidp_session', interaction: 'devidp_interaction', resume: 'devidp_resume' },
      keys: ['dev-idp-cookie-signing-key-not-a-secret'],
    },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => mayActOn(client.clientId, token),
      },
      jwtIntrospection: { enabled: true },
      revocation: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => mayActOn(client.clientId, token),
      },
      clientCredentials: { enabled: true },
      backchannelLogout: { enabled: true },
      ...(options.tls?.ca ? { mTLS } : {}),
      resourceIndicators: { enabled: false }, // no resource indicators: every access token is opaque
      rpInitiatedLogout: {
        enabled: true,
        // Confirm the logout without a human: the form (op.logoutForm, with its xsrf) is submitted at once,
        // with logout=yes (end the whole IdP session, back-channel logout to every client in it).
        async logoutSource(ctx, form) {
          const autoForm = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
          ctx.type = 'html';
          ctx.body = page(
            'Signing out',
            `<p>Signing out&hellip;</p>${autoForm}<noscript><button type="submit" form="op.logoutForm">Sign out</button></noscript>`,
            "document.getElementById('op.logoutForm').submit();",
          );
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Signed out', '<h1>Signed out</h1>');
        },
      },
    },
    issueRefreshToken: async (ctx, client, code) => client.clientId === 'webapp'
      || (client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access')),
    rotateRefreshToken: true,
    // RFC 7662 `sub` of a client-credentials token: the client itself (as in the application/jwt answers).
    extraTokenClaims: (ctx, token) => (token.kind === 'ClientCredentials' ? { sub: token.clientId } : undefined),
    ttl: {
      AccessToken: accessTtl,
      ClientCredentials: accessTtl,
      AuthorizationCode: 60,
      IdToken: 300,
      RefreshToken: 24 * 60 * 60,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
      Interaction: 10 * 60,
    },
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    async renderError(ctx, out, error) {
      log(`error page: ${out.error}: ${out.error_description}${error?.status >= 500 ? ` (${error.message})` : ''}`);
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(out);
    },
    // oidc-provider refuses outgoing requests to special-use addresses (loopback included) to prevent SSRF;
    // here the back-channel logout receiver is Shroud on 127.0.0.1, so that protection is dropped.
    fetch: (url, { dispatcher, ...init }) => globalThis.fetch(url, init),
  };

  const provider = new Provider(issuer, configuration);

  provider.on('server_error', (ctx, err) => log(`server_error: ${err.stack || err}`));
  provider.on('backchannel.success', (ctx, client, accountId, sid) => {
    stats.backchannelLogouts.sent += 1;
    log(`back-channel logout sent to ${client.clientId} (sub=${accountId}, sid=${sid})`);
  });
  provider.on('backchannel.error', (ctx, err, client) => {
    stats.backchannelLogouts.failed += 1;
    log(`back-channel logout to ${client.clientId} failed: ${err.message}`);
  });

  // --- request log (outermost) -----------------------------------------------------------------------
  provider.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // The path only: query strings may carry id_token_hint, codes or state.
      log(`${ctx.method} ${ctx.path} ${ctx.status} ${ms.toFixed(1)}ms`);
    }
  });

  // --- counters ---------------------------------------------------------------------------------------
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === ROUTES.introspection) {
      stats.introspections += 1;
      if (!wantsCurityJwt(ctx)) {
        const rfc9701 = String(ctx.get('accept')).toLowerCase().includes('application/token-introspection+jwt');
        stats.introspectionsByMode[rfc9701 ? 'rfc9701' : 'json'] += 1;
      }
    } else if (ctx.method === 'POST' && ctx.path === ROUTES.revocation) {
      stats.revocations += 1;
    }
    await next();
    if (ctx.method === 'POST' && ctx.path === ROUTES.token) {
      stats.tokenRequests += 1;
      if (ctx.oidc?.params?.grant_type === 'refresh_token') stats.refreshGrants += 1;
    }
  });

  // --- Curity-style application/jwt introspection ------------------------------------------------------
  provider.use(curityIntrospection({
    provider,
    path: ROUTES.introspection,
    clients,
    signingJwk: es256,
    canIntrospect: mayActOn,
    onRequest: (mode) => { stats.introspectionsByMode[mode] += 1; },
  }));

  // --- headless interaction: log in the configured user and grant everything requested ------------------
  provider.use(async (ctx, next) => {
    const match = /^\/interaction\/([^/]+)\/?$/.exec(ctx.path);
    if (!match || (ctx.method !== 'GET' && ctx.method !== 'POST')) return next();
    ctx.set('cache-control', 'no-store');

    let details;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch (err) {
      log(`interaction ${match[1]}: ${err.message} (the user agent must keep the IdP's cookies between redirects)`);
      return oauthError(ctx, 400, err.error || 'invalid_request', err.error_description || err.message);
    }
    if (details.uid !== match[1]) {
      return oauthError(ctx, 400, 'invalid_request', 'interaction cookie does not match the URL');
    }

    const { prompt, params, session } = details;
    const login = prompt.name === 'login' || !session?.accountId;
    const accountId = login ? user : session.accountId;

    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    if (!grant || grant.accountId !== accountId || grant.clientId !== params.client_id) {
      grant = new provider.Grant({ accountId, clientId: params.client_id });
    }
    const requested = String(params.scope || '').split(' ').filter((s) => SCOPES.includes(s));
    if (requested.length) grant.addOIDCScope(requested.join(' '));
    const missing = prompt.details || {};
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();

    const result = { consent: { grantId } };
    if (login) result.login = { accountId, ts: epochTime(), amr: ['pwd'], remember: true };
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    log(`interaction ${details.uid}: ${login ? `logged in ${accountId}, ` : ''}granted "${grant.getOIDCScope()}" to ${params.client_id}`);
    ctx.status = 303;
    ctx.redirect(returnTo);
    return undefined;
  });

  // --- test helpers --------------------------------------------------------------------------------------
  async function revokeGrant(grantId) {
    await Promise.all([
      provider.AccessToken.revokeByGrantId(grantId),
      provider.RefreshToken.revokeByGrantId(grantId),
      provider.AuthorizationCode.revokeByGrantId(grantId),
      provider.Grant.adapter.destroy(grantId),
    ]);
  }

  async function logoutUser(sub, { keepTokens = false } = {}) {
    const report = { sessions: 0, notified: [], failed: [] };
    for (const { id, payload } of [...store.list('Session')]) {
      if (payload.accountId !== sub) continue;
      report.sessions += 1;
      for (const [clientId, authorization] of Object.entries(payload.authorizations || {})) {
        const client = await provider.Client.find(clientId);
        if (client?.backchannelLogoutUri) {
          try {
            await client.backchannelLogout(sub, authorization.sid);
            stats.backchannelLogouts.sent += 1;
            report.notified.push({ client_id: clientId, sid: authorization.sid });
            log(`back-channel logout sent to ${clientId} (sub=${sub}, sid=${authorization.sid})`);
          } catch (err) {
            stats.backchannelLogouts.failed += 1;
            report.failed.push({ client_id: clientId, sid: authorization.sid, error: err.message });
            log(`back-channel logout to ${clientId} failed: ${err.message}`);
          }
        }
        if (!keepTokens && authorization.grantId && !authorization.persistsLogout) {
          await revokeGrant(authorization.grantId);
        }
      }
      if (!keepTokens) await provider.Session.adapter.destroy(id);
    }
    return report;
  }

  provider.use(async (ctx, next) => {
    if (!ctx.path.startsWith('/_test/')) return next();
    try {
      if (ctx.path === '/_test/stats' && ctx.method === 'GET') {
        return json(ctx, 200, { ...stats, stored: store.counts() });
      }
      if (ctx.path === '/_test/stats/reset' && ctx.method === 'POST') {
        resetStats();
        return json(ctx, 200, stats);
      }
      if (ctx.path === '/_test/revoke' && ctx.method === 'POST') {
        const { token } = await readForm(ctx);
        if (!token) return oauthError(ctx, 400, 'invalid_request', "missing required parameter 'token'");
        const found = await findActiveToken(provider, token, ['AccessToken', 'ClientCredentials', 'RefreshToken']);
        if (found) {
          if (found.kind === 'RefreshToken' && found.grantId) await revokeGrant(found.grantId);
          else await found.destroy();
        }
        log(`/_test/revoke: ${found ? `revoked a ${found.kind}` : 'no such active token'}`);
        return json(ctx, 200, { revoked: !!found, kind: found?.kind });
      }
      if (ctx.path === '/_test/logout-user' && ctx.method === 'POST') {
        const body = await readJson(ctx);
        const sub = typeof body.sub === 'string' && body.sub ? body.sub : user;
        return json(ctx, 200, await logoutUser(sub, { keepTokens: body.keepTokens === true }));
      }
      return oauthError(ctx, 404, 'not_found', 'no such test endpoint');
    } catch (err) {
      return oauthError(ctx, err.status || 400, 'invalid_request', err.message);
    }
  });

  return {
    provider,
    store,
    stats,
    routes: ROUTES,
    close() {
      store.close();
    },
  };
}
