'use strict';
// The Node SDK's half of compare_node.sh: bms-mca-oauth-sdk's getAuthorizationHeaderBySecret doing
// the work mca_oauth_bench --node-comparison-driver does, against the same standalone
// mca-test-server. Prints one JSON line with the same fields.
//
//   node node_sdk_bench.js --server-url URL --tenant-family NAME --cold-fetches N --callers N --warm-seconds S

const sdk = require('bms-mca-oauth-sdk');

function parseFlags(argv) {
  const flags = {};
  for (let i = 0; i + 1 < argv.length; i += 2) flags[argv[i]] = argv[i + 1];
  for (const name of ['--server-url', '--tenant-family', '--cold-fetches', '--callers', '--warm-seconds']) {
    if (flags[name] === undefined) throw new Error(`missing ${name}`);
  }
  return flags;
}

// Tenant `index` of a family, named as compare_node.sh registers them on the server.
function familyTenant(family, index, serverUrl) {
  const appId = `${family}-${index}`;
  return { appId, clientId: `client-${appId}`, secret: `secret-${appId}`, serverUrl };
}

function millisecondsSince(start) {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

// The server numbers its tokens (the JWT's jti); the number of a token issued now tells how many
// requests it has answered so far. The SDK never caches secret-flow tokens, so this is a fetch.
async function tokensIssuedSoFar(tenant) {
  const header = await sdk.getAuthorizationHeaderBySecret(tenant);
  const payload = header.slice('Bearer '.length).split('.')[1];
  return Number(JSON.parse(Buffer.from(payload, 'base64url').toString()).jti);
}

async function main() {
  const flags = parseFlags(process.argv.slice(2));
  const coldFetches = Number(flags['--cold-fetches']);
  const tenant = (index) => familyTenant(flags['--tenant-family'], index, flags['--server-url']);
  // Tenant 0 answers warm calls, 1..coldFetches are fetched cold once each, the next one is the crowd's.
  const warm = tenant(0);

  await sdk.getAuthorizationHeaderBySecret(warm);
  let warmCalls = 0;
  const warmStart = process.hrtime.bigint();
  while (millisecondsSince(warmStart) < Number(flags['--warm-seconds']) * 1000) {
    await sdk.getAuthorizationHeaderBySecret(warm);
    warmCalls += 1;
  }
  const callsPerSecondWarm = warmCalls / (millisecondsSince(warmStart) / 1000);

  const coldMs = [];
  for (let i = 1; i <= coldFetches; i += 1) {
    const start = process.hrtime.bigint();
    await sdk.getAuthorizationHeaderBySecret(tenant(i));
    coldMs.push(millisecondsSince(start));
  }

  const crowd = tenant(coldFetches + 1);
  const issuedBefore = await tokensIssuedSoFar(warm);
  const calls = [];
  for (let i = 0; i < Number(flags['--callers']); i += 1) calls.push(sdk.getAuthorizationHeaderBySecret(crowd));
  await Promise.all(calls);
  const serverRequestsForCallers = (await tokensIssuedSoFar(warm)) - issuedBefore - 1;

  console.log(JSON.stringify({ callsPerSecondWarm, coldFetchMs: median(coldMs), serverRequestsForCallers }));
}

main().catch((error) => {
  console.error('node_sdk_bench:', error && (error.stack || JSON.stringify(error)));
  process.exit(1);
});
