// Fuzzes an authorization server's metadata document: parseServerMetadata against a fixed
// issuer, then requireAuthMethod for each method the client can use. The input is the raw HTTP
// body. mca::Error (InvalidResponse from the parser, InvalidConfiguration from the method check)
// is the documented way to refuse; anything else escapes to libFuzzer, which reports a crash.

#include <mca/detail/discovery.hpp>

#include "fuzz_check.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

// The issuer of most seeds; its path makes the RFC 8414 and OIDC URLs differ.
constexpr std::string_view kIssuer = "https://as.example.com/tenant";

bool isPrintableAscii(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte >= 0x20 && byte < 0x7F;
    });
}

// Every message may reach a log line: printable and short, whatever the document holds.
void checkMessage(const mca::Error& error, mca::Errc expected) {
    MCA_FUZZ_CHECK(error.errc() == expected);
    const std::string_view message = error.what();
    MCA_FUZZ_CHECK(isPrintableAscii(message));
    MCA_FUZZ_CHECK(message.size() < 4096);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    mca::detail::ServerMetadata metadata;
    try {
        metadata = mca::detail::parseServerMetadata(body, kIssuer);
    } catch (const mca::Error& error) {
        checkMessage(error, mca::Errc::InvalidResponse);
        return 0;
    }
    // What was accepted honours every promise of the parser.
    MCA_FUZZ_CHECK(body.size() <= mca::detail::kMaxMetadataBytes);
    MCA_FUZZ_CHECK(metadata.issuer == kIssuer);
    MCA_FUZZ_CHECK(metadata.tokenEndpoint.size() <= mca::detail::kMaxMetadataString);
    MCA_FUZZ_CHECK(isPrintableAscii(metadata.tokenEndpoint));
    MCA_FUZZ_CHECK(mca::detail::startsWithNoCase(metadata.tokenEndpoint, "https://"));  // the issuer's scheme
    MCA_FUZZ_CHECK(metadata.tokenEndpoint.find('#') == std::string::npos);
    MCA_FUZZ_CHECK(metadata.authMethods.size() <= mca::detail::kMaxListedAuthMethods);
    if (!metadata.authMethodsListed) MCA_FUZZ_CHECK(metadata.authMethods.empty());
    for (const auto& method : metadata.authMethods) MCA_FUZZ_CHECK(method.size() <= mca::detail::kMaxMetadataString);

    for (const std::string_view method :
         {"client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"}) {
        const bool listed =
            std::find(metadata.authMethods.begin(), metadata.authMethods.end(), method) != metadata.authMethods.end();
        try {
            mca::detail::requireAuthMethod(metadata, method);
            MCA_FUZZ_CHECK(!metadata.authMethodsListed || listed);
        } catch (const mca::Error& error) {
            checkMessage(error, mca::Errc::InvalidConfiguration);
            MCA_FUZZ_CHECK(metadata.authMethodsListed && !listed);
        }
    }
    return 0;
}
