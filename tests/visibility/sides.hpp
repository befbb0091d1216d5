#pragma once

// What each of the two hidden-visibility libraries exports: the same three functions, in the
// namespace side_a or side_b.

#include <system_error>

#define MCA_VISIBILITY_SIDE(side)                                                  \
    namespace side {                                                               \
    __attribute__((visibility("default"))) std::error_code timeout();              \
    __attribute__((visibility("default"))) bool isTimeout(const std::error_code&); \
    [[noreturn]] __attribute__((visibility("default"))) void throwTimeout();       \
    }

MCA_VISIBILITY_SIDE(side_a)
MCA_VISIBILITY_SIDE(side_b)
