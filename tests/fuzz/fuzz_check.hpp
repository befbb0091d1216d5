#pragma once

// Shared by the fuzz targets: an invariant check that survives NDEBUG (the fuzz build is
// RelWithDebInfo, where assert() is compiled out) and makes libFuzzer report a crash.

#include <cstdio>
#include <cstdlib>

#define MCA_FUZZ_CHECK(condition)                                                                  \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #condition); \
            std::abort();                                                                          \
        }                                                                                          \
    } while (false)
