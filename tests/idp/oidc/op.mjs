// The OpenID Provider the OIDC login tests run against: the certified `oidc-provider` library,
// configured like a DigiD broker (authorization code + PKCE S256 required, the BSN in an ID token
// claim, the DigiD level in `acr`). Started by tests/login/conftest.py as `node op.mjs CONFIG.json`;
// HTTPS with a certificate from certs/. Two clients: `cfg.client` authenticates with private_key_jwt
// (OIDC Core §9), `cfg.tls_client` with tls_client_auth (RFC 8705 §2.1: a client certificate from
// the development CA `cfg.ca` whose dNSName SAN is `cfg.tls_client.san_dns`). The server asks every
// peer for a certificate but lets connections without one (or with an untrusted one) through, so that
// oidc-provider itself refuses the token request (invalid_client) and the browser needs none.
//
// The login page asks for a BSN and a DigiD level (or Annuleren: access_denied). For the tests a
// control endpoint on the same server can rotate the signing key, publish a wrong JWKS (so ID token
// signatures fail), set the provider's clock back (so its ID tokens are expired) or make the token
// endpoint hand out ID tokens with other claims (`id_token` = a JSON object of claims to replace,
// null removes one, `{}` is normal again; re-signed with the current key, so only those claims are
// wrong: a wrong `aud` or `azp`, which a conforming provider never issues). Test use only.
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';

import Provider from 'oidc-provider';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const ACR = {
  basis: 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport',
  midden: 'urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract',
  substantieel: 'urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard',
  hoog: 'urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI',
};

let clockOffset = 0;
const realNow = Date.now;
Date.now = () => realNow() + clockOffset * 1000;

const accounts = new Map(); // pseudonymous account id -> BSN

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };
}

// RFC 8705 §2.1.2: the registered tls_client_auth_san_dns must be one of the certificate's dNSName
// SANs, compared exactly (no wildcards).
function subjectMatches(ctx, property, expected) {
  if (property !== 'tls_client_auth_san_dns') throw new Error(`${property} is not supported by the test OP`);
  const cert = clientCertificate(ctx);
  const names = (cert?.subjectAltName || '').split(', ').filter((n) => n.startsWith('DNS:'));
  return names.some((n) => n.slice(4) === expected);
}

function clientCertificate(ctx) {
  const peer = ctx.socket.getPeerCertificate();
  return peer && peer.raw ? new crypto.X509Certificate(peer.raw) : undefined;
}

let idTokenClaims = {}; // claims the token endpoint puts into its ID tokens instead of the real ones
let reissued = 0; // ID tokens handed out with them since they were set

// The ID token with `idTokenClaims` replaced, signed again with the provider's key under the same
// protected header (RS256, same kid): a valid signature over wrong claims.
function reissue(idToken, signingJwk) {
  const [header, payload] = idToken.split('.');
  const protectedHeader = JSON.parse(Buffer.from(header, 'base64url').toString());
  if (protectedHeader.alg !== 'RS256' || protectedHeader.kid !== signingJwk.kid) {
    throw new Error('unexpected ID token header');
  }
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  for (const [name, value] of Object.entries(idTokenClaims)) {
    if (value === null) delete claims[name]; else claims[name] = value;
  }
  const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const privateKey = crypto.createPrivateKey({ key: signingJwk, format: 'jwk' });
  const signature = crypto.sign('sha256', Buffer.from(input), privateKey); // RS256: RSASSA-PKCS1-v1_5, SHA-256
  return `${input}.${signature.toString('base64url')}`;
}

function makeProvider(key) {
  const provider = new Provider(cfg.issuer, {
    clients: [{
      client_id: cfg.client.client_id,
      redirect_uris: [cfg.client.redirect_uri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [cfg.client.jwk] },
      id_token_signed_response_alg: 'RS256',
    }, {
      client_id: cfg.tls_client.client_id,
      redirect_uris: [cfg.tls_client.redirect_uri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_san_dns: cfg.tls_client.san_dns,
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: [key] },
    findAccount: async (ctx, id) => (accounts.has(id) ? {
      accountId: id,
      async claims() { return { sub: id, bsn: accounts.get(id) }; },
    } : undefined),
    claims: { acr: null, auth_time: null, sid: null, openid: ['sub', 'bsn'] },
    conformIdTokenClaims: false,
    acrValues: Object.values(ACR),
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      mTLS: {
        enabled: true,
        tlsClientAuth: true,
        getCertificate: clientCertificate,
        // the TLS handshake verified the chain against the development CA (server option `ca`)
        certificateAuthorized: (ctx) => ctx.socket.authorized === true,
        certificateSubjectMatches: subjectMatches,
      },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    clientAuthMethods: ['private_key_jwt', 'tls_client_auth'],
    enabledJWA: { clientAuthSigningAlgValues: ['RS256', 'ES256', 'PS256'] },
  });
  provider.use(async (ctx, next) => {
    await next();
    const misissue = Object.keys(idTokenClaims).length > 0;
    if (misissue && ctx.oidc?.route === 'token' && ctx.status === 200 && ctx.body?.id_token) {
      ctx.body = { ...ctx.body, id_token: reissue(ctx.body.id_token, key) };
      reissued += 1;
    }
  });
  return provider;
}

let key = signingKey();
let provider = makeProvider(key);
let jwksMode = 'normal';

function page(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>Inloggen (test-OP)</title></head>
<body><main><h1>Inloggen met DigiD via de test-inlogdienst</h1>${body}</main></body></html>`);
}

async function readBody(req) {
  let data = '';
  for await (const chunk of req) { data += chunk; if (data.length > 65536) break; }
  return new URLSearchParams(data);
}

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    const levels = Object.keys(ACR).map((l) => `<option value="${l}">${l}</option>`).join('');
    return page(res, 200, `<form method="post" action="/interaction/${uid}">
<label for="bsn">Burgerservicenummer (BSN)</label><input id="bsn" name="bsn">
<label for="level">Niveau</label><select id="level" name="level">${levels}</select>
<button name="action" value="login">Inloggen</button><button name="action" value="cancel">Annuleren</button></form>`);
  }
  const form = await readBody(req);
  if (form.get('action') === 'cancel') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'cancelled' },
      { mergeWithLastSubmission: false });
  }
  const accountId = crypto.randomUUID();
  accounts.set(accountId, form.get('bsn') || '');
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  grant.addOIDCClaims(['bsn']);
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, {
    login: { accountId, acr: ACR[form.get('level')] || ACR.basis },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

async function control(req, res) {
  const form = await readBody(req);
  if (form.get('rotate')) { key = signingKey(); provider = makeProvider(key); }
  if (form.get('jwks')) jwksMode = form.get('jwks');
  if (form.get('clock_offset')) clockOffset = Number(form.get('clock_offset'));
  const before = { id_token: idTokenClaims, reissued };
  if (form.get('id_token')) { idTokenClaims = JSON.parse(form.get('id_token')); reissued = 0; }
  res.writeHead(200, { 'content-type': 'application/json' });
  // `before`: the ID token claims mode this call ended and how many tokens it re-issued
  res.end(JSON.stringify({ kid: key.kid, jwks: jwksMode, clock_offset: clockOffset, id_token: idTokenClaims, before }));
}

const tlsOptions = {
  key: fs.readFileSync(cfg.tls_key),
  cert: fs.readFileSync(cfg.tls_cert),
  ca: fs.readFileSync(cfg.ca),
  requestCert: true,
  rejectUnauthorized: false,
};
const server = https.createServer(tlsOptions,
  async (req, res) => {
    try {
      const url = new URL(req.url, cfg.issuer);
      const match = url.pathname.match(/^\/interaction\/([\w-]+)$/);
      if (match) return await interaction(req, res, match[1]);
      if (url.pathname === '/_test/control' && req.method === 'POST') return await control(req, res);
      if (url.pathname === '/jwks' && jwksMode === 'mismatch') {
        const other = signingKey();
        const { d, p, q, dp, dq, qi, ...pub } = other; // eslint-disable-line no-unused-vars
        res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
        return res.end(JSON.stringify({ keys: [{ ...pub, kid: key.kid }] }));
      }
      return provider.callback()(req, res);
    } catch (err) {
      if (!res.headersSent) page(res, 500, '<p>Er ging iets mis.</p>');
      return undefined;
    }
  });
server.listen(cfg.port, '127.0.0.1', () => { process.stdout.write(`test OP listening on ${cfg.port}\n`); });
process.on('SIGTERM', () => server.close(() => process.exit(0)));
