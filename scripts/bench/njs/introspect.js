// The njs half of the "nginx-njs" target: introspect the bearer token (RFC 7662, JSON) and answer 200 with
// the JWT for the upstream in `X-JWT`, or 401 when the token is missing or not active (auth_request denies).
// The JWT is HS256 (njs 0.7 has HMAC at hand); it is minted only on a miss, as the answer is cached.
const crypto = require('crypto');

const CLIENT = 'Basic ' + Buffer.from('gateway:gateway-secret').toString('base64');
const JWT_KEY = 'bench-only-hs256-key-0123456789abcdef';
const JWT_HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

function mint(claims) {
    const now = Math.floor(Date.now() / 1000);
    const payload = {
        iss: 'https://nginx-njs.local',
        sub: claims.sub,
        client_id: claims.client_id,
        scope: claims.scope,
        iat: now,
        exp: Math.min(claims.exp || now + 300, now + 300),
    };
    const input = JWT_HEADER + '.' + Buffer.from(JSON.stringify(payload)).toString('base64url');
    return input + '.' + crypto.createHmac('sha256', JWT_KEY).update(input).digest('base64url');
}

async function introspect(r) {
    const match = /^Bearer ([\x21-\x7e]+)$/.exec(r.headersIn.Authorization || '');
    if (!match) {
        r.return(401);
        return;
    }
    let claims;
    try {
        const reply = await ngx.fetch(r.variables.introspection_endpoint, {
            method: 'POST',
            headers: {
                Authorization: CLIENT,
                'Content-Type': 'application/x-www-form-urlencoded',
                Accept: 'application/json',
            },
            body: 'token=' + encodeURIComponent(match[1]),
        });
        if (reply.status != 200) {
            throw new Error('introspection status ' + reply.status);
        }
        claims = await reply.json();
    } catch (e) {
        r.error('introspection failed: ' + e);
        r.return(502); // auth_request turns this into 500: never cached, never let through
        return;
    }
    if (claims.active !== true) {
        r.return(401);
        return;
    }
    r.headersOut['X-JWT'] = mint(claims);
    r.return(200);
}

export default { introspect };
