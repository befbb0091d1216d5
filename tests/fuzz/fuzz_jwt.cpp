// Fuzzes the JWT reading done on every access token: jwtExpiry and base64UrlDecode (and, through
// the round trip below, base64UrlEncode, which the certificate flow's JWS is built with).
// The input is used twice: as a whole token (the dots, the base64url) and as the JSON claims
// of a well-formed token, so that the claims parser is reached without the fuzzer having to
// discover base64url first.

#include <mca/detail/token_reply.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

void checkExpiry(std::string_view token) {
    const auto exp = mca::detail::jwtExpiry(token);
    if (exp) MCA_FUZZ_CHECK(*exp >= 0);  // a negative exp would make tokenLifetime nonsense
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    checkExpiry(input);
    checkExpiry("eyJhbGciOiJSUzI1NiJ9." + mca::detail::base64UrlEncode(input) + ".c2ln");

    // Whatever decodes must survive a round trip: encoding the bytes again and decoding that
    // gives the same bytes (the input itself may be a non-canonical spelling of them).
    if (const auto decoded = mca::detail::base64UrlDecode(input)) {
        MCA_FUZZ_CHECK(decoded->size() <= input.size() * 3 / 4);
        const auto again = mca::detail::base64UrlDecode(mca::detail::base64UrlEncode(*decoded));
        MCA_FUZZ_CHECK(again && *again == *decoded);
    }
    return 0;
}
