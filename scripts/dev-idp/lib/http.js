// Small helpers for the hand-written routes (Koa contexts).
import { createHash, timingSafeEqual } from 'node:crypto';

const MAX_BODY = 64 * 1024;

/** Reads the raw request body (at most 64 KiB) as a string. */
export async function readBody(ctx) {
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > MAX_BODY) {
      const err = new Error('request body too large');
      err.status = 413;
      throw err;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads an `application/x-www-form-urlencoded` body into a plain object (first value of each name). */
export async function readForm(ctx) {
  const params = new URLSearchParams(await readBody(ctx));
  const out = {};
  for (const [name, value] of params) {
    if (!(name in out)) out[name] = value;
  }
  return out;
}

/** Reads a JSON object body; an empty body is `{}`. */
export async function readJson(ctx) {
  const text = (await readBody(ctx)).trim();
  if (!text) return {};
  const value = JSON.parse(text);
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('expected a JSON object');
  return value;
}

/** The media types of the Accept header, lower-cased, without parameters. */
export function acceptedTypes(ctx) {
  return String(ctx.get('accept') || '')
    .split(',')
    .map((part) => part.split(';')[0].trim().toLowerCase())
    .filter(Boolean);
}

export function json(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('cache-control', 'no-store');
  ctx.body = JSON.stringify(body);
}

export function oauthError(ctx, status, error, description) {
  json(ctx, status, { error, error_description: description });
}

function sha256(value) {
  return createHash('sha256').update(String(value)).digest();
}

/** Constant-time comparison of two strings. */
export function safeEqual(a, b) {
  return timingSafeEqual(sha256(a), sha256(b));
}

/**
 * The client credentials of a request: HTTP Basic (RFC 6749 §2.3.1, form-encoded parts) or
 * `client_id` + `client_secret` in the form. Returns `{ clientId, clientSecret, method }` or undefined;
 * throws on a malformed Authorization header.
 */
export function clientCredentials(ctx, form) {
  const header = ctx.get('authorization');
  if (header) {
    const [scheme, value, ...rest] = header.trim().split(/\s+/);
    if (scheme.toLowerCase() !== 'basic' || !value || rest.length) throw new Error('malformed Authorization header');
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) throw new Error('malformed Basic credentials');
    const decode = (s) => decodeURIComponent(s.replace(/\+/g, '%20'));
    return {
      clientId: decode(decoded.slice(0, colon)),
      clientSecret: decode(decoded.slice(colon + 1)),
      method: 'client_secret_basic',
    };
  }
  if (form.client_id !== undefined && form.client_secret !== undefined) {
    return { clientId: form.client_id, clientSecret: form.client_secret, method: 'client_secret_post' };
  }
  return undefined;
}

/** A token-free fingerprint, for a JWT `jti` that must not reveal the opaque token. */
export function fingerprint(value) {
  return sha256(`dev-idp:${value}`).subarray(0, 18).toString('base64url');
}
