#!/usr/bin/env bash
# The Node SDK (bms-mca-oauth-sdk 3.0.5, getAuthorizationHeaderBySecret) and mca-oauth side by
# side, on the same work, against the same standalone loopback mca-test-server: calls per second
# warm, the latency of a cold fetch, and the token requests the server saw for 1,000 concurrent
# callers. Prints both and the ratios. Builds nothing: pass the built executables.
#
#   tests/benchmarks/compare_node.sh build/bench/tests/support/mca-test-server \
#                                    build/bench/tests/benchmarks/mca_oauth_bench
#
# The SDK is installed from npm into a temporary directory on every run (node 20 and a reachable
# npm registry are needed). Its native dependency x509 does not build on Node 20; npm overrides
# replace it with node/x509-stub, which the secret flow never calls.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 PATH/TO/mca-test-server PATH/TO/mca_oauth_bench" >&2
  exit 2
fi
server_program=$(realpath "$1")
bench_program=$(realpath "$2")
node_dir=$(cd "$(dirname "$0")/node" && pwd)

cold_fetches=50
callers=1000
warm_seconds=2

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cp -r "$node_dir/." "$work/"
echo "installing bms-mca-oauth-sdk@3.0.5 in $work ..." >&2
(cd "$work" && npm install --no-audit --no-fund --loglevel=error >&2)

# Each side gets its own tenant family: tenant 0 (warm), 1..cold_fetches (cold), one for the crowd.
tenant_flags=()
for family in mca-oauth node-sdk; do
  for ((i = 0; i <= cold_fetches + 1; i++)); do
    tenant_flags+=(--app "$family-$i" --client "client-$family-$i" --secret "secret-$family-$i")
  done
done
"$server_program" --port-file "$work/port" "${tenant_flags[@]}" >/dev/null &
server_pid=$!
for ((waited = 0; waited < 100; waited++)); do
  [[ -s $work/port ]] && break
  sleep 0.1
done
[[ -s $work/port ]] || { echo "mca-test-server did not start" >&2; exit 1; }
server_url="http://127.0.0.1:$(cat "$work/port")/imf-authserver"

workload=(--server-url "$server_url" --cold-fetches "$cold_fetches" --callers "$callers" --warm-seconds "$warm_seconds")
mca_oauth_result=$("$bench_program" --node-comparison-driver "${workload[@]}" --tenant-family mca-oauth)
node_sdk_result=$(cd "$work" && node node_sdk_bench.js "${workload[@]}" --tenant-family node-sdk)

echo "mca-oauth: $mca_oauth_result"
echo "Node SDK:  $node_sdk_result"
node "$work/print_comparison.js" "$mca_oauth_result" "$node_sdk_result" "$callers"
