#pragma once

// A proxy URL's credentials, taken out of it: libcurl gets the URL without them and the user
// name and password on their own (CURLOPT_PROXYUSERNAME / CURLOPT_PROXYPASSWORD), so that a
// URL it refuses, which it quotes in its error text, carries no password.

#include "../version.hpp"
#include "secret.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

struct ProxySetting {
    std::string url;  // without user information
    bool hasCredentials = false;
    SecretString user;                     // percent-decoded
    SecretString password;                 // percent-decoded
    std::vector<SecretString> redactions;  // the password decoded and as written in the URL
};

/// Decodes %XX escapes into `out` (storage reserved up front, so a secret is never regrown and
/// copied); a malformed escape is kept as written, as libcurl does.
inline void appendPercentDecoded(std::string& out, std::string_view text) {
    out.reserve(out.size() + text.size());
    const auto hexValue = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hexValue(text[i + 1]) >= 0 && hexValue(text[i + 2]) >= 0) {
            out += static_cast<char>(hexValue(text[i + 1]) * 16 + hexValue(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
}

/// Splits `[scheme://][user[:password]@]host[:port][/...]`. The URL is not otherwise checked:
/// libcurl judges it.
inline ProxySetting splitProxyUrl(std::string_view proxy) {
    ProxySetting setting;
    const auto schemeEnd = proxy.find("://");
    const std::size_t authorityAt = schemeEnd == std::string_view::npos ? 0 : schemeEnd + 3;
    const std::size_t authorityEnd = std::min(proxy.find_first_of("/?#", authorityAt), proxy.size());
    const std::string_view authority = proxy.substr(authorityAt, authorityEnd - authorityAt);
    const auto at = authority.rfind('@');
    if (at == std::string_view::npos) {
        setting.url = std::string(proxy);
        return setting;
    }
    const std::string_view userInfo = authority.substr(0, at);
    const auto colon = userInfo.find(':');
    const std::string_view user = userInfo.substr(0, colon);
    const std::string_view password = colon == std::string_view::npos ? std::string_view() : userInfo.substr(colon + 1);
    setting.hasCredentials = true;
    appendPercentDecoded(setting.user.buffer(), user);
    appendPercentDecoded(setting.password.buffer(), password);
    setting.url.reserve(proxy.size());
    setting.url.append(proxy.substr(0, authorityAt))
        .append(authority.substr(at + 1))
        .append(proxy.substr(authorityEnd));
    if (!setting.password.empty()) setting.redactions.push_back(setting.password);
    if (!password.empty() && password != setting.password.view()) setting.redactions.emplace_back(password);
    return setting;
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
