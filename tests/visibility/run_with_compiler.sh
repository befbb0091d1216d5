#!/bin/sh
# Builds the hidden-visibility test in this directory with the given compiler and runs it:
#   run_with_compiler.sh <c++ compiler> <build dir> <cmake generator> [<make program>]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
compiler=$1 build=$2 generator=$3 make_program=${4:-}
# The parent build's flags (sanitizers) are for its own compiler.
unset CXXFLAGS LDFLAGS
rm -rf "$build"
set -- -S "$here" -B "$build" -G "$generator" -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_BUILD_TYPE=Debug
[ -n "$make_program" ] && set -- "$@" -DCMAKE_MAKE_PROGRAM="$make_program"
cmake "$@" >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j 2
"$build/mca_visibility_test"
