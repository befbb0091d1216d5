#!/usr/bin/env bash
# An example that calls the test server's protected resource (examples/curl_client.cpp,
# examples/asio_client.cpp): when the resource refuses the first token with 401, the example must
# invalidate that header, fetch a new token and retry exactly once; never more.
# usage: protected_resource_test.sh <example> <mca-test-server>
set -uo pipefail
example=$1 server=$2
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
export MCA_SECRET=demo-secret
unset VCAP_SERVICES VCAP_APPLICATION
failures=0

# start_server <name> <tokens the resource refuses>: sets $origin
start_server() {
  "$server" --port-file "$work/$1.port" --revoke-first-tokens "$2" >/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/$1.port" ] && break; sleep 0.05; done
  origin="http://127.0.0.1:$(cat "$work/$1.port")"
}

# expect <exit code> <statuses the example must print, in order> <description>
expect() {
  "$example" "$origin/resource" "$origin/imf-authserver" demo-app demo-client >"$work/out" 2>"$work/err"
  local code=$? statuses
  statuses=$(sed -n 's/^HTTP \([0-9]*\)$/\1/p' "$work/out" | tr '\n' ' ')
  if [ "$code" != "$1" ] || [ "$statuses" != "$2 " ]; then
    echo "FAIL: $3: exit $code and statuses '$statuses', expected $1 and '$2 '"; cat "$work/out" "$work/err"
    failures=$((failures + 1))
  else
    echo "ok: $3 (exit $code, statuses $statuses)"
  fi
}

start_server one-revoked 1
expect 0 "401 200" "the first token is refused: the header is invalidated and the call retried once"
expect 0 "200" "a new process gets a new token, accepted at once"
start_server two-revoked 2
expect 1 "401 401" "a second refusal is the answer: no second retry"

[ "$failures" = 0 ]
