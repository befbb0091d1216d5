// The test binary's getaddrinfo (see hanging_resolver.hpp). libcurl references getaddrinfo, so
// the linker exports this definition from the executable and the dynamic linker binds libcurl's
// calls to it ahead of libc's. Built outside the unity translation unit: it is a C symbol.

#include "hanging_resolver.hpp"

#include <dlfcn.h>
#include <netdb.h>

#include <atomic>
#include <cstring>
#include <thread>

namespace {
std::atomic<std::size_t> lookups{0};

using GetAddrInfo = int (*)(const char*, const char*, const addrinfo*, addrinfo**);

GetAddrInfo realGetAddrInfo() {
    static const GetAddrInfo real = [] {
        GetAddrInfo function = nullptr;
        void* const symbol = ::dlsym(RTLD_NEXT, "getaddrinfo");
        std::memcpy(&function, &symbol, sizeof function);  // object to function pointer, portably
        return function;
    }();
    return real;
}
}  // namespace

namespace mca::test {
std::size_t hangingLookups() { return lookups.load(); }
}  // namespace mca::test

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** result) {
    if (node != nullptr && std::strcmp(node, mca::test::kHangingHost) == 0) {
        lookups.fetch_add(1);
        std::this_thread::sleep_for(mca::test::kResolverHang);
        return EAI_NONAME;
    }
    const GetAddrInfo real = realGetAddrInfo();
    return real != nullptr ? real(node, service, hints, result) : EAI_SYSTEM;
}
