// Fuzzes parseVcap, which reads Cloud Foundry's environment in the AuthClient constructor.
// The input is VCAP_SERVICES, then optionally a NUL byte and VCAP_APPLICATION; without a NUL,
// VCAP_APPLICATION is unset (null). Each is passed NUL-terminated, as getenv returns it (so
// VCAP_APPLICATION ends at a second NUL, if there is one).
// parseVcap must not throw: nothing catches around it, any exception escapes to libFuzzer.

// No AuthClient is made here: with the declarations only, the implementation is not compiled.
#define MCA_OAUTH_SEPARATE_COMPILATION
#include <mca/detail/vcap.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const char* const text = reinterpret_cast<const char*>(data);
    const auto* const nul = static_cast<const char*>(std::memchr(text, '\0', size));

    const std::string services(text, nul ? static_cast<std::size_t>(nul - text) : size);
    const std::string application = nul ? std::string(nul + 1, text + size) : std::string();

    (void)mca::detail::parseVcap(services.c_str(), nul ? application.c_str() : nullptr);
    return 0;
}
