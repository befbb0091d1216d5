#!/usr/bin/env bash
# The mca-token example against the loopback server: output forms and one exit code per error class.
# usage: mca_token_test.sh <mca-token> <mca-test-server>
set -uo pipefail
token=$1 server=$2
work=$(mktemp -d)
"$server" --port-file "$work/port" >/dev/null &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
url="http://127.0.0.1:$(cat "$work/port")/imf-authserver"
echo demo-secret > "$work/secret"
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

[ "$failures" = 0 ]
