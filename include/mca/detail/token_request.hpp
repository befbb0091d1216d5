#pragma once

// How a token request is spelled on the wire (the MCA secret flow): URL, Basic credentials, form.

#include "../version.hpp"
#include "encoding.hpp"
#include "handles.hpp"
#include "secret.hpp"

#include <optional>
#include <string>
#include <string_view>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

inline constexpr std::string_view kClientCredentialsForm = "grant_type=client_credentials";
inline constexpr std::string_view kMcaTokenPath = "authorization/v1/apps/";

/// The server URL as the protocol uses it: trimmed, ending in '/'. nullopt unless it is an
/// absolute http(s) URL with a host (libcurl's URL parser decides, as it will fetch it).
inline std::optional<std::string> normalizeServerUrl(std::string_view serverUrl) {
    const std::string trimmed(trimWhitespace(serverUrl));
    if (!startsWithNoCase(trimmed, "http://") && !startsWithNoCase(trimmed, "https://")) return std::nullopt;
    const CurlUrlPtr parsed(curl_url());
    if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, trimmed.c_str(), 0) != CURLUE_OK) return std::nullopt;
    char* host = nullptr;
    const bool hasHost =
        curl_url_get(parsed.get(), CURLUPART_HOST, &host, 0) == CURLUE_OK && host != nullptr && *host != '\0';
    curl_free(host);
    if (!hasHost) return std::nullopt;
    return trimmed.back() == '/' ? trimmed : trimmed + '/';
}

/// POST target of the secret flow: {serverUrl}/authorization/v1/apps/{appId}/token, with the
/// appId percent-encoded so that it is always exactly one path segment.
inline std::string mcaTokenUrl(const std::string& normalizedServerUrl, std::string_view appId) {
    std::string url = normalizedServerUrl;
    url += kMcaTokenPath;
    url += percentEncode(appId);
    url += "/token";
    return url;
}

/// `Basic base64(clientId ":" secret)`, as the Node SDK sends it (no form-encoding of the parts).
inline SecretString basicAuthorization(std::string_view clientId, std::string_view secret) {
    SecretString joined;
    joined.buffer().reserve(clientId.size() + 1 + secret.size());
    joined.buffer().append(clientId).append(1, ':').append(secret);
    SecretString header;
    header.buffer().reserve(6 + (joined.view().size() + 2) / 3 * 4);
    header.buffer() = "Basic ";
    appendBase64(header.buffer(), joined.view());
    return header;
}

/// application/x-www-form-urlencoded encoding of one value.
inline std::string formEncode(std::string_view text) { return percentEncode(text, Escaping::Form); }

/// formEncode for a secret: encoded straight into wiped storage reserved for the worst case.
inline SecretString formEncodeSecret(std::string_view secret) {
    SecretString encoded;
    appendPercentEncoded(encoded.buffer(), secret, Escaping::Form);
    return encoded;
}

/// Basic credentials as RFC 6749 §2.3.1 asks of OAuth clients: id and secret form-encoded, then
/// joined by ':' and base64-encoded (so an id or secret holding ':' stays unambiguous).
inline SecretString oauthBasicAuthorization(std::string_view clientId, std::string_view secret) {
    const SecretString encodedSecret = formEncodeSecret(secret);
    const std::string encodedId = formEncode(clientId);
    return basicAuthorization(encodedId, encodedSecret.view());
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
