// A real OpenID Connect provider for the tests: panva's `oidc-provider`, configured from a
// JSON file. Started by tests/support/oidc.py:
//
//   OIDC_PROVIDER_NODE_MODULES=<cache>/node_modules node provider.mjs <config.json>
//
// The config names the clients (client_id, client_secret, redirect_uris) and the test
// accounts (login -> claims). It listens on an ephemeral port of 127.0.0.1 (so that no
// port can be taken between choosing and binding it), then prints one line,
// `listening <issuer>`, on stdout. PKCE is required of every client (S256 only, the
// library's sole method). Logins go through the library's development interactions: a login
// form that accepts any password for a known account, then a consent form.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [configPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const modules = process.env.OIDC_PROVIDER_NODE_MODULES;
if (!modules) {
  throw new Error('OIDC_PROVIDER_NODE_MODULES must name the node_modules folder holding oidc-provider');
}
// ES modules do not look in NODE_PATH: resolve the package from its folder explicitly.
const resolve = createRequire(join(modules, 'resolver.cjs')).resolve;
const { default: Provider } = await import(pathToFileURL(resolve('oidc-provider')).href);

const accounts = config.accounts;

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: config.clients.map((client) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...client,
    })),
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    // true (the library's default, and the spec's reading): with an access token issued,
    // the claims of the scopes are served by the userinfo endpoint, not the ID token.
    conformIdTokenClaims: config.conformIdTokenClaims ?? true,
    ttl: { IdToken: config.idTokenTtl ?? 3600 },
    cookies: { keys: ['reliability-studio-tests-only'] },
    async findAccount(_ctx, id) {
      const account = accounts[id];
      if (!account) {
        return undefined;
      }
      return {
        accountId: id,
        async claims() {
          return { sub: id, ...account };
        },
      };
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`listening ${issuer}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
