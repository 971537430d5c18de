// Sign-ins with openid-client and oauth4webapi for as long as the test keeps them coming,
// across `manage keys rotate` (tests/test_key_rotation_node.py). Each library discovers the
// provider once and keeps its one JWKS cache for the whole run, and verifies every ID
// token's signature against it: a cached JWKS that meets a key it has not fetched fails.
//
// The conversation, one line each way (stdin/stdout):
//   Node:   {"lib": "openid-client", "url": "<authorization URL>"}
//   test:   <callback URL the provider redirected to, after the hosted login>
//   Node:   {"lib": ..., "ok": true, "kid": ..., "access_token": ...}   then the next URL
//   test:   quit
// At the first failure Node prints {"lib": ..., "ok": false, "error": ...} and exits 1.
//
// Both libraries refetch a cached JWKS that lacks a token's kid only when their copy is at
// least 60 s old, and keep it 300 s otherwise (oauth4webapi's getPublicSigKeyFromIssuerJwksUri).
// CLOCK_SPEED makes this process's clock run that many times faster than the test's, so the
// test sees those lifetimes in seconds; CLOCK_TOLERANCE (s) is how far token times may then
// be from this clock (the test's ID tokens live 300 s of the provider's time).
import * as readline from "node:readline";
import * as client from "openid-client";
import * as oauth from "oauth4webapi";

const env = process.env;
const SPEED = Number(env.CLOCK_SPEED ?? "1");
const TOLERANCE = Number(env.CLOCK_TOLERANCE ?? "30");
const realNow = Date.now.bind(Date);
const startedAt = realNow();
Date.now = () => Math.floor(startedAt + (realNow() - startedAt) * SPEED);

const issuer = new URL(env.ISSUER);
const redirectUri = env.REDIRECT_URI;
const secret = env.CLIENT_SECRET;

function kidOf(idToken) {
  const header = idToken.split(".")[0];
  return JSON.parse(Buffer.from(header, "base64url").toString()).kid;
}

// openid-client: one Configuration (its JWKS cache lives in it). authorizationCodeGrant
// verifies the ID token's signature only with non-repudiation checks enabled (by default it
// trusts the TLS response of the token endpoint, as OIDC Core §3.1.3.7 allows).
const config = await client.discovery(
  issuer,
  env.CLIENT_ID,
  { client_secret: secret, [client.clockTolerance]: TOLERANCE },
  client.ClientSecretBasic(secret),
  { execute: [client.allowInsecureRequests] }, // the test server is http on loopback
);
client.enableNonRepudiationChecks(config);

async function openidClientSignIn() {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  return {
    url: url.href,
    async finish(callback) {
      const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
      return tokens;
    },
  };
}

// oauth4webapi: one authorization server object (its JWKS cache is keyed by it).
// processAuthorizationCodeResponse validates the ID token's claims; its signature is checked
// by validateApplicationLevelSignature, against the cached JWKS.
const insecure = { [oauth.allowInsecureRequests]: true };
const as = await oauth
  .discoveryRequest(issuer, insecure)
  .then((response) => oauth.processDiscoveryResponse(issuer, response));
const oauthClient = { client_id: env.CLIENT_ID, [oauth.clockTolerance]: TOLERANCE };
const clientAuth = oauth.ClientSecretBasic(secret);

async function oauth4webapiSignIn() {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint);
  for (const [name, value] of Object.entries({
    client_id: env.CLIENT_ID,
    redirect_uri: redirectUri,
    response_type: "code",
    scope: "openid",
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  })) {
    url.searchParams.set(name, value);
  }
  return {
    url: url.href,
    async finish(callback) {
      const params = oauth.validateAuthResponse(as, oauthClient, new URL(callback), state);
      const response = await oauth.authorizationCodeGrantRequest(
        as, oauthClient, clientAuth, params, redirectUri, verifier, insecure,
      );
      const tokens = await oauth.processAuthorizationCodeResponse(as, oauthClient, response, {
        expectedNonce: nonce,
        requireIdToken: true,
      });
      await oauth.validateApplicationLevelSignature(as, response, insecure);
      return tokens;
    },
  };
}

const libraries = [
  ["openid-client", openidClientSignIn],
  ["oauth4webapi", oauth4webapiSignIn],
];
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

for (let turn = 0; ; turn++) {
  const [lib, begin] = libraries[turn % libraries.length];
  const signIn = await begin();
  say({ lib, url: signIn.url });
  const { value: callback, done } = await lines.next();
  if (done || callback.trim() === "quit") break;
  try {
    const tokens = await signIn.finish(callback.trim());
    say({ lib, ok: true, kid: kidOf(tokens.id_token), access_token: tokens.access_token });
  } catch (error) {
    const detail = `${error?.name}: ${error?.message} ${JSON.stringify(error?.cause ?? {})}`;
    say({ lib, ok: false, error: detail });
    console.error(`${lib}: sign-in ${turn} failed: ${detail}`);
    process.exit(1);
  }
}
process.exit(0); // stdin stays open under readline
