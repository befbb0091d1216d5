#!/usr/bin/env bash
# Keeps the README true: every code block preceded by `<!-- examples/NAME.cpp -->` must appear,
# line for line, in that example, which CI compiles.
# usage: readme_examples_test.sh <repository root>
set -euo pipefail
root=$1
failures=0 checked=0 source="" in_block=0 block=""
while IFS= read -r line; do
  if [[ $line =~ ^\<!--\ (examples/[a-z_]+\.cpp)\ --\>$ ]]; then
    source=${BASH_REMATCH[1]}
  elif [[ -n $source && $in_block == 0 && $line == '```cpp' ]]; then
    in_block=1 block=""
  elif [[ $in_block == 1 && $line == '```' ]]; then
    if ! awk -v want="$block" 'BEGIN { RS = "\0" } { found = index($0, want) } END { exit found ? 0 : 1 }' \
        "$root/$source" 2>/dev/null; then
      echo "README block not found in $source:"; echo "$block"; failures=$((failures + 1))
    fi
    checked=$((checked + 1)) in_block=0 source=""
  elif [[ $in_block == 1 ]]; then
    block+="${block:+$'\n'}$line"
  fi
done < "$root/README.md"
echo "$checked README blocks checked against examples/, $failures missing"
[ "$checked" -gt 0 ] && [ "$failures" = 0 ]
