// openid-client against a live server, as a standard Node client uses it: discovery, a
// worker's client_credentials token, a resource server's introspection, refresh and
// revocation of a user's token, the end-session URL. Prints one JSON object of results.
import * as client from "openid-client";

const env = process.env;
const insecure = { execute: [client.allowInsecureRequests] }; // the test server is http

async function configure(id, secret) {
  return client.discovery(new URL(env.ISSUER), id, secret, client.ClientSecretBasic(secret), insecure);
}

const worker = await configure(env.WORKER_ID, env.WORKER_SECRET);
const resourceServer = await configure(env.API_ID, env.API_SECRET);
const app = await configure(env.APP_ID, env.APP_SECRET);

const issued = await client.clientCredentialsGrant(worker, { scope: "roles" });
const workerToken = await client.tokenIntrospection(resourceServer, issued.access_token);

const renewed = await client.refreshTokenGrant(app, env.REFRESH_TOKEN);
const userToken = await client.tokenIntrospection(resourceServer, renewed.access_token);
await client.tokenRevocation(app, renewed.refresh_token, { token_type_hint: "refresh_token" });
const afterRevocation = await client.tokenIntrospection(resourceServer, renewed.access_token);

await client.tokenRevocation(worker, issued.access_token);
const workerAfter = await client.tokenIntrospection(resourceServer, issued.access_token);

const logout = client.buildEndSessionUrl(app, {
  id_token_hint: renewed.id_token,
  post_logout_redirect_uri: env.AFTER_LOGOUT,
  state: "bye",
});

console.log(JSON.stringify({
  issued: { token_type: issued.token_type, scope: issued.scope, refresh: issued.refresh_token ?? null },
  workerToken,
  userToken,
  afterRevocation,
  workerAfter,
  logout: logout.href,
}));
