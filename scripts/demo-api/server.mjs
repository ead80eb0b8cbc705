// Demo API for Shroud: answers every request with what it learnt from the JWT Shroud forwarded
// (header and claims, decoded; never the token itself, so nothing usable travels back to a browser).
// Usage: node scripts/demo-api/server.mjs [port]   (default 7001, listens on 127.0.0.1)
import http from 'node:http';

const port = Number(process.argv[2] || process.env.DEMO_API_PORT || 7001);

function decode(part) {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

const server = http.createServer((req, res) => {
  const auth = req.headers.authorization || '';
  const jwt = auth.startsWith('Bearer ') ? auth.slice(7) : '';
  const [header, claims] = jwt.split('.').map(decode);
  const body = {
    message: claims && claims.sub ? `hello ${claims.sub}` : 'hello anonymous caller',
    method: req.method,
    path: req.url,
    received_jwt: Boolean(header && claims),
    jwt_header: header || null,
    jwt_claims: claims || null,
    cookie_header_present: Boolean(req.headers.cookie),
  };
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
});

server.listen(port, '127.0.0.1', () => console.log(`demo-api listening on http://127.0.0.1:${port}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
