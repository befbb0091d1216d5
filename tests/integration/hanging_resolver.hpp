#pragma once

// A DNS server that never answers, for one host name: the test binary defines its own
// getaddrinfo (hanging_resolver.cpp), which libcurl's resolver threads call instead of libc's.
// For kHangingHost it sleeps kResolverHang and then fails; every other name goes to the real
// getaddrinfo (found with dlsym(RTLD_NEXT), so a sanitizer's interceptor still sees it).

#include <chrono>
#include <cstddef>

namespace mca::test {

inline constexpr const char* kHangingHost = "dns-hangs.test";
inline constexpr std::chrono::seconds kResolverHang{6};

/// Lookups of kHangingHost begun so far: 0 after one was expected means the interposer is not
/// in effect (a static libcurl, or a linker that did not export it).
std::size_t hangingLookups();

}  // namespace mca::test
