#pragma once

/// @file version.hpp
/// @brief mca-oauth version, and the macros that give its declarations their ABI; CMake reads
/// the project version from these macros.

#define MCA_OAUTH_VERSION_MAJOR 0
#define MCA_OAUTH_VERSION_MINOR 1
#define MCA_OAUTH_VERSION_PATCH 0
#define MCA_OAUTH_VERSION_STRING "0.1.0"

// Every declaration of the library, public and detail, lives in the inline namespace `mca::v1`.
// Code keeps writing `mca::AuthClient` and `mca::detail::...`; the symbols are
// `mca::v1::AuthClient`, so two ABI versions linked into one program (through two libraries that
// each embed a different mca-oauth) are two sets of symbols, not a silent ODR violation. `v1`
// changes when the ABI does, not with every release.
//
// The convention for every header under include/mca/: include "version.hpp" (or
// "../version.hpp"), then wrap everything it declares, `namespace detail { ... }` included:
//
//     MCA_OAUTH_NAMESPACE_BEGIN
//     namespace detail {
//     ...
//     }  // namespace detail
//     MCA_OAUTH_NAMESPACE_END
//
// Specialisations of std templates stay outside and name the type as `mca::Type`.
#define MCA_OAUTH_ABI_NAMESPACE v1
#define MCA_OAUTH_NAMESPACE_BEGIN \
    namespace mca {               \
    inline namespace MCA_OAUTH_ABI_NAMESPACE {
#define MCA_OAUTH_NAMESPACE_END \
    }                           \
    }

// Separate compilation, an option for programs with many translation units: define
// MCA_OAUTH_SEPARATE_COMPILATION for every translation unit of the program (the CMake target
// mca::oauth_compiled does) and include <mca/src.hpp> in exactly one of them. The others then
// see the public declarations only, and the implementation (libcurl, OpenSSL, nlohmann/json) is
// compiled once. Without it, the library is header-only: every function is inline.
#ifdef MCA_OAUTH_SEPARATE_COMPILATION
#define MCA_OAUTH_DECL
#else
#define MCA_OAUTH_DECL inline
#endif

// Default visibility for what must be one object per process even when the user builds shared
// libraries with -fvisibility=hidden or -fvisibility-inlines-hidden: the error category (its
// std::error_code comparisons compare addresses) and the exception type (caught by type across
// shared objects). GCC and Clang then unify an inline function's static local across shared
// objects (GCC as an STB_GNU_UNIQUE symbol, Clang as a default-visibility weak one).
#if defined(__GNUC__) || defined(__clang__)
#define MCA_OAUTH_VISIBLE __attribute__((visibility("default")))
#else
#define MCA_OAUTH_VISIBLE
#endif
