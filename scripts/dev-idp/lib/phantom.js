// Curity-style phantom-token introspection (`Accept: application/jwt`), in front of oidc-provider's
// own introspection endpoint: an active access token is answered with 200 and the token as a signed JWT
// (`typ: at+jwt`), anything else with 204 No Content.
import { importJWK, SignJWT } from 'jose';

import {
  acceptedTypes, clientCredentials, fingerprint, oauthError, readForm, safeEqual,
} from './http.js';

const RFC9701 = 'application/token-introspection+jwt';
const CURITY = 'application/jwt';

/** Whether the request asks for the Curity contract (and not RFC 9701). */
export function wantsCurityJwt(ctx) {
  const types = acceptedTypes(ctx);
  return types.includes(CURITY) && !types.includes(RFC9701);
}

/**
 * Finds a usable token by value among the given kinds (default: access tokens of both grants):
 * not expired, not consumed, and with a live grant belonging to the same client and account.
 */
export async function findActiveToken(provider, value, kinds = ['AccessToken', 'ClientCredentials']) {
  if (typeof value !== 'string' || !value) return undefined;
  for (const kind of kinds) {
    let token;
    try {
      token = await provider[kind].find(value);
    } catch {
      token = undefined;
    }
    if (!token) continue;
    if (!token.isValid || token.consumed) return undefined;
    if (token.grantId) {
      const grant = await provider.Grant.find(token.grantId, { ignoreExpiration: true });
      if (!grant || grant.isExpired) return undefined;
      if (grant.clientId !== token.clientId || grant.accountId !== token.accountId) return undefined;
    }
    return token;
  }
  return undefined;
}

/**
 * Koa middleware. `clients` are the static client definitions (snake_case metadata), `signingJwk` the
 * provider's private ES256 JWK (with kid), `canIntrospect(callerClientId, token)` the policy.
 */
export function curityIntrospection({
  provider, path, clients, signingJwk, canIntrospect, onRequest,
}) {
  const secrets = new Map(clients.map((c) => [c.client_id, c.client_secret]));
  const keyPromise = importJWK(signingJwk, 'ES256');

  return async function curityJwtIntrospection(ctx, next) {
    if (ctx.path !== path || ctx.method !== 'POST' || !wantsCurityJwt(ctx)) {
      return next();
    }
    onRequest?.('jwt');
    ctx.set('cache-control', 'no-store');

    if (!ctx.is('application/x-www-form-urlencoded')) {
      return oauthError(ctx, 400, 'invalid_request', 'only application/x-www-form-urlencoded content-type bodies are supported');
    }
    const form = await readForm(ctx);

    let creds;
    try {
      creds = clientCredentials(ctx, form);
    } catch (err) {
      return oauthError(ctx, 400, 'invalid_request', err.message);
    }
    const expected = creds && secrets.get(creds.clientId);
    if (!creds || expected === undefined || !safeEqual(expected, creds.clientSecret)) {
      if (ctx.get('authorization')) ctx.set('www-authenticate', 'Basic realm="dev-idp"');
      return oauthError(ctx, 401, 'invalid_client', 'client authentication failed');
    }
    if (!form.token) {
      return oauthError(ctx, 400, 'invalid_request', "missing required parameter 'token'");
    }

    const token = await findActiveToken(provider, form.token);
    if (!token || !canIntrospect(creds.clientId, token)) {
      ctx.status = 204;
      return undefined;
    }

    const claims = {
      ...token.extra,
      sub: token.accountId || token.clientId,
      client_id: token.clientId,
      scope: token.scope || undefined,
      aud: token.aud || undefined,
      sid: token.sid || undefined,
      jti: fingerprint(form.token),
    };
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: signingJwk.kid })
      .setIssuer(provider.issuer)
      .setIssuedAt(token.iat)
      .setExpirationTime(token.exp)
      .sign(await keyPromise);

    ctx.status = 200;
    ctx.type = 'application/jwt';
    ctx.body = jwt;
    return undefined;
  };
}
