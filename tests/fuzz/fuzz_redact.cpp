// Fuzzes redact, which removes the tenant's secret from every error message built from outside
// text (the server's error body, libcurl's error text) on the engine thread.
// The input is the secret, a NUL byte, then the text; without a NUL there is nothing to do.

#include <mca/detail/redaction.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const char* const input = reinterpret_cast<const char*>(data);
    const auto* const nul = static_cast<const char*>(std::memchr(input, '\0', size));
    if (nul == nullptr) return 0;
    const std::string_view secret(input, static_cast<std::size_t>(nul - input));
    const std::string original(nul + 1, input + size);

    // It must return (a loop that finds its own "***" again is a hang: libFuzzer's -timeout).
    std::string text = original;
    mca::detail::redact(text, secret);

    // Each occurrence of at least one byte becomes "***": the text can at most triple.
    MCA_FUZZ_CHECK(text.size() <= 3 * original.size());
    // No secret survives. (A secret holding '*' may be re-formed next to an inserted "***",
    // which reveals nothing, so the check is for the other secrets.)
    if (!secret.empty() && secret.find('*') == std::string_view::npos) {
        MCA_FUZZ_CHECK(text.find(secret) == std::string::npos);
    }
    return 0;
}
