// Signing keys, fresh at every start: one ES256 (P-256) and one RS256 (RSA 2048) key.
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';

async function generate(alg, options) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...options });
  const jwk = await exportJWK(privateKey);
  const kid = `${alg.toLowerCase()}-${(await calculateJwkThumbprint(jwk)).slice(0, 16)}`;
  return { ...jwk, kid, alg, use: 'sig' };
}

/** Returns `{ jwks, es256 }`: the private JWK Set for oidc-provider and the ES256 JWK (with kid). */
export async function generateSigningKeys() {
  const [es256, rs256] = await Promise.all([
    generate('ES256'),
    generate('RS256', { modulusLength: 2048 }),
  ]);
  return { jwks: { keys: [es256, rs256] }, es256 };
}
