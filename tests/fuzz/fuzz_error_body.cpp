// Fuzzes describeErrorBody with a secret: whatever a server sends in a refusal, no encoding of
// the secret (raw, JSON-escaped, form- or percent-encoded, base64) survives into the message.
// The input is the secret, a NUL byte, then the body; without a NUL there is nothing to do.

#include <mca/detail/encoding.hpp>
#include <mca/detail/redaction.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

/// The secret as a JSON encoder may write it: minimal escaping, or with "\/" and every
/// non-ASCII byte sequence and control character as \uXXXX (only for ASCII secrets here).
std::vector<std::string> jsonForms(std::string_view secret) {
    std::string minimal, slashes, ascii;
    for (const char c : secret) {
        const auto byte = static_cast<unsigned char>(c);
        const std::string escaped = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : std::string(1, c);
        minimal += escaped;
        slashes += c == '/' ? "\\/" : escaped;
        char unicode[8];
        std::snprintf(unicode, sizeof unicode, "\\u%04x", byte);
        ascii += byte < 0x20 || byte == '"' || byte == '\\' || byte == '/' ? std::string(unicode) : std::string(1, c);
    }
    return {minimal, slashes, ascii};
}

/// Text describeErrorBody writes itself; a secret inside it would be "found" without a leak.
bool partOfTheFormatting(std::string_view secret) {
    for (const std::string_view own : {"<redacted>", "empty body", "body \"", "...", "***", ": "}) {
        if (own.find(secret) != std::string_view::npos) return true;
    }
    // Characters the formatting produces or replaces: '*' (the replacement), '?' (for
    // unprintable bytes), '<' '>' (token runs), '.' and ':' and '"' (its own text).
    return secret.find_first_of("*?<>.:\"") != std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const char* const input = reinterpret_cast<const char*>(data);
    const auto* const nul = static_cast<const char*>(std::memchr(input, '\0', size));
    if (nul == nullptr) return 0;
    const std::string_view secret(input, static_cast<std::size_t>(nul - input));
    const std::string_view body(nul + 1, static_cast<std::size_t>(input + size - nul - 1));

    std::vector<mca::detail::SecretString> secrets;
    secrets.emplace_back(secret);
    const std::string description = mca::detail::describeErrorBody(body, secrets);
    MCA_FUZZ_CHECK(description.size() <= 256);  // 200 shown + "..." + the framing

    if (secret.size() < 4 || partOfTheFormatting(secret)) return 0;
    std::vector<std::string> forms = jsonForms(secret);
    forms.push_back(std::string(secret));
    forms.push_back(mca::detail::percentEncode(secret, mca::detail::Escaping::Form));
    forms.push_back(mca::detail::percentEncode(secret, mca::detail::Escaping::PathSegment));
    if (secret.size() >= 8) forms.push_back(mca::detail::base64Encode(secret));
    for (const auto& form : forms) {
        if (description.find(form) != std::string::npos) {
            std::fprintf(stderr, "secret form survived: %s\n", description.c_str());
            MCA_FUZZ_CHECK(description.find(form) == std::string::npos);
        }
    }
    return 0;
}
