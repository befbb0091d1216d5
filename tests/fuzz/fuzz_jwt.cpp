// Fuzzes the JWT reading done on every access token: jwtExpiry and base64UrlDecode.
// The input is used twice: as a whole token (the dots, the base64url) and as the JSON claims
// of a well-formed token, so that the claims parser is reached without the fuzzer having to
// discover base64url first.

#include <mca/auth_client.hpp>

#include "fuzz_check.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

void checkExpiry(std::string_view token) {
    const auto exp = mca::detail::jwtExpiry(token);
    if (exp) MCA_FUZZ_CHECK(*exp >= 0);  // a negative exp would make tokenLifetime nonsense
}

// base64url without padding, from the library's base64 encoder.
std::string base64UrlEncode(std::string_view bytes) {
    std::string text = mca::detail::base64Encode(bytes);
    text.erase(std::remove(text.begin(), text.end(), '='), text.end());
    std::replace(text.begin(), text.end(), '+', '-');
    std::replace(text.begin(), text.end(), '/', '_');
    return text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    checkExpiry(input);
    checkExpiry("eyJhbGciOiJSUzI1NiJ9." + base64UrlEncode(input) + ".c2ln");

    // Whatever decodes must survive a round trip: encoding the bytes again and decoding that
    // gives the same bytes (the input itself may be a non-canonical spelling of them).
    if (const auto decoded = mca::detail::base64UrlDecode(input)) {
        MCA_FUZZ_CHECK(decoded->size() <= input.size() * 3 / 4);
        const auto again = mca::detail::base64UrlDecode(base64UrlEncode(*decoded));
        MCA_FUZZ_CHECK(again && *again == *decoded);
    }
    return 0;
}
