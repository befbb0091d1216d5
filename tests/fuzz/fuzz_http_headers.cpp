// Fuzzes what the client reads from headers and configuration text: Retry-After and Date
// (parseRetryAfter, parseHttpDate), the server URL (normalizeServerUrl) and the appId's path
// encoding (percentEncode). The same input text goes to each.

#include <mca/detail/encoding.hpp>
#include <mca/detail/token_reply.hpp>
#include <mca/detail/token_request.hpp>

#include "fuzz_check.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

bool isUnreserved(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

int upperHexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// percentEncode's output must be one path segment: unreserved characters and %XX (uppercase
// hex) only; and it must decode back to the input, so that no appId is lost or mangled.
void checkPercentEncoding(std::string_view input) {
    const std::string encoded = mca::detail::percentEncode(input);
    std::string decoded;
    for (std::size_t i = 0; i < encoded.size(); ++i) {
        if (encoded[i] != '%') {
            MCA_FUZZ_CHECK(isUnreserved(encoded[i]));
            decoded += encoded[i];
            continue;
        }
        MCA_FUZZ_CHECK(i + 2 < encoded.size());
        const int high = upperHexValue(encoded[i + 1]);
        const int low = upperHexValue(encoded[i + 2]);
        MCA_FUZZ_CHECK(high >= 0 && low >= 0);
        decoded += static_cast<char>(high * 16 + low);
        i += 2;
    }
    MCA_FUZZ_CHECK(decoded == input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    // A fixed "now" keeps every run reproducible.
    const auto now = std::chrono::system_clock::from_time_t(1717243200);  // 2024-06-01
    if (const auto wait = mca::detail::parseRetryAfter(text, now)) {
        MCA_FUZZ_CHECK(wait->count() >= 0);  // a negative wait would be a retry in the past
    }
    // curl_getdate refuses dates before 1970 (it returns -1 for them), so none can come back.
    if (const auto date = mca::detail::parseHttpDate(text)) {
        MCA_FUZZ_CHECK(date->time_since_epoch().count() >= 0);
    }

    // An accepted server URL is what the token URL is built from: non-empty, ending in '/'.
    if (const auto url = mca::detail::normalizeServerUrl(text)) {
        MCA_FUZZ_CHECK(!url->empty() && url->back() == '/');
    }

    checkPercentEncoding(text);
    return 0;
}
