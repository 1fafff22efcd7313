// The OpenID Connect provider the flbsql tests start on loopback (tests/fix_oidc.py).
//
// node provider.js <config.json>: listens on 127.0.0.1 (config.port, 0 = any free port;
// HTTPS when config.tls has a cert and key) and prints one line "listening <url>" when
// ready. Config: issuer path, clients (oidc-provider client metadata: a
// client_secret client and a private_key_jwt client with its public jwks), scopes,
// accessTokenTTL (seconds), skew (seconds added to the provider's clock, to test the
// client's clock-skew check). Access tokens of the client-credentials grant are JWTs
// for the resource (audience) asked for, or the configured default one.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

if (config.skew) {
  const realNow = Date.now;
  Date.now = () => realNow() + config.skew * 1000;
}

const scheme = config.tls ? 'https' : 'http';
const server = config.tls
  ? https.createServer({ cert: fs.readFileSync(config.tls.cert), key: fs.readFileSync(config.tls.key) })
  : http.createServer();

server.listen(config.port || 0, '127.0.0.1', () => {
  const { port } = server.address();
  const origin = `${scheme}://127.0.0.1:${port}`;
  const issuer = `${origin}${config.path || ''}`;
  const provider = new Provider(issuer, {
    clients: config.clients,
    scopes: config.scopes,
    clockTolerance: 0,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => config.defaultAudience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (!config.audiences.includes(resource)) {
            throw new errors.InvalidTarget(`unknown resource ${resource}`);
          }
          return {
            scope: config.scopes.join(' '),
            audience: resource,
            accessTokenTTL: config.accessTokenTTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  provider.proxy = false;
  // one line per token request: what the tests count (never the secret)
  provider.on('grant.success', (ctx) => {
    console.log(`grant ${ctx.oidc.client?.clientId}`);
  });
  provider.on('grant.error', (ctx, err) => {
    console.log(`grant-error ${ctx.oidc.client?.clientId} ${err.error} ${err.error_detail || ''}`);
  });
  const mount = config.path || '/';
  if (mount === '/') {
    server.on('request', provider.callback());
  } else {
    server.on('request', (req, res) => {
      if (req.url.startsWith(mount)) {
        req.originalUrl = req.url; // oidc-provider builds its endpoint URLs with the mount
        req.url = req.url.slice(mount.length) || '/';
        provider.callback()(req, res);
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
  }
  console.log(`listening ${issuer}`);
});
