#!/usr/bin/env bash
# The mca-token example against the loopback server: output forms and one exit code per error class.
# usage: mca_token_test.sh <mca-token> <mca-test-server>
set -uo pipefail
token=$1 server=$2
work=$(mktemp -d)
# A realm's clients, one per method the CLI can use over plain http (tls_client_auth needs TLS).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=cli-jwt \
  -keyout "$work/jwt-key.pem" -out "$work/jwt-cert.pem" >/dev/null 2>&1 || { echo "FAIL: openssl"; exit 1; }
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/other-key.pem" >/dev/null 2>&1 ||
  { echo "FAIL: openssl"; exit 1; }
"$server" --port-file "$work/port" --app demo-app --client demo-client --secret demo-secret \
  --realm cli --oauth-client basic --oauth-method client_secret_basic --oauth-secret realm-secret \
  --oauth-client post --oauth-method client_secret_post --oauth-secret realm-secret \
  --oauth-client jwt --oauth-method private_key_jwt --oauth-key-file "$work/jwt-cert.pem" >/dev/null &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
url="http://127.0.0.1:$(cat "$work/port")/imf-authserver"
issuer="http://127.0.0.1:$(cat "$work/port")/realms/cli"
echo demo-secret > "$work/secret"
echo realm-secret > "$work/realm-secret"
unset VCAP_SERVICES VCAP_APPLICATION MCA_SECRET
failures=0

expect() {  # expect <exit code> <description> -- command...
  local want=$1 what=$2; shift 3
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"; cat "$work/err"; failures=$((failures + 1))
  else
    echo "ok: $what (exit $got)"
  fi
}

expect 0 "header from flags" -- "$token" --app-id demo-app --client-id demo-client --secret-file "$work/secret" --server-url "$url"
grep -q '^Bearer ey' "$work/out" || { echo "FAIL: no Bearer header printed"; failures=$((failures + 1)); }

expect 0 "--json" -- "$token" --app-id demo-app --client-id demo-client --secret-file "$work/secret" --server-url "$url" --json
grep -q '"tenant": "demo-app"' "$work/out" && grep -q '"expiresAt": "20' "$work/out" ||
  { echo "FAIL: --json output"; cat "$work/out"; failures=$((failures + 1)); }

VCAP_SERVICES="{\"AdvancedMobileAccess\": [{\"credentials\": {\"tenantId\": \"demo-app\", \"clientId\": \"demo-client\",
  \"secret\": \"demo-secret\", \"serverUrl\": \"$url\"}}]}" expect 0 "credentials from VCAP_SERVICES" -- "$token"

expect 0 "--help" -- "$token" --help
expect 2 "unknown option" -- "$token" --frobnicate
expect 3 "missing appId" -- "$token"
MCA_SECRET=not-the-secret-7f3a expect 4 "wrong secret" -- "$token" --app-id demo-app --client-id demo-client --server-url "$url"
grep -q 'not-the-secret-7f3a' "$work/err" && { echo "FAIL: the secret appears in the error"; failures=$((failures + 1)); }
expect 5 "unreachable server" -- "$token" --app-id demo-app --client-id demo-client --secret-file "$work/secret" \
  --server-url "http://127.0.0.1:1/imf-authserver" --timeout 0.3
expect 3 "missing certificate files" -- "$token" --app-id demo-app --cert-dir "$work/none" --server-url "$url"

# Any OAuth 2.0 server: each method, discovery, parameters; and bad flags.
expect 0 "client_secret_basic at a token URL" -- "$token" --client-id basic --secret-file "$work/realm-secret" \
  --token-url "$issuer/protocol/openid-connect/token" --auth-method client_secret_basic
expect 0 "client_secret_post, discovered from the issuer" -- "$token" --client-id post \
  --secret-file "$work/realm-secret" --issuer "$issuer" --auth-method client_secret_post
expect 0 "private_key_jwt with parameters" -- "$token" --client-id jwt --issuer "$issuer" \
  --auth-method private_key_jwt --key-file "$work/jwt-key.pem" --cert-file "$work/jwt-cert.pem" --kid k1 \
  --alg ES256 --resource https://api.example.com/a --resource https://api.example.com/b --scope read \
  --param tenant=eu --json
grep -q '"header": "Bearer ey' "$work/out" || { echo "FAIL: private_key_jwt --json output"; cat "$work/out"; failures=$((failures + 1)); }
expect 4 "private_key_jwt signed with a key the server does not know" -- "$token" --client-id jwt \
  --issuer "$issuer" --auth-method private_key_jwt --key-file "$work/other-key.pem"
expect 3 "client_assertion without its file" -- "$token" --client-id jwt --issuer "$issuer" \
  --auth-method client_assertion --assertion-file "$work/none"
expect 2 "unknown --auth-method" -- "$token" --client-id basic --issuer "$issuer" --auth-method nope
expect 2 "--param without a value" -- "$token" --client-id basic --issuer "$issuer" --param novalue
expect 2 "--app-id with an OAuth client" -- "$token" --app-id demo-app --client-id basic --issuer "$issuer"

[ "$failures" = 0 ]
