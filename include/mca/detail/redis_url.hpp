#pragma once

// redis://[[user]:password@]host[:port][/db][?timeout=ms], parsed without hiredis so that the
// parser can be tested and fuzzed on its own.

#include "../version.hpp"
#include "encoding.hpp"
#include "secret.hpp"

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

struct RedisEndpoint {
    std::string host;
    int port = 6379;
    std::string user;       // empty: AUTH with the password alone (or no AUTH when it is empty too)
    SecretString password;  // may be empty for a named user (an ACL user without a password)
    int database = 0;
    std::chrono::milliseconds timeout{20};  // per command, and per connection attempt
};

/// Appends `text` with its %XX escapes decoded (user and password may hold ':' or '@') to
/// `out`, reserved up front so that a password decoded into wiped storage is never regrown and
/// copied; throws on a malformed escape.
inline void appendPercentDecodedStrict(std::string& out, std::string_view text) {
    out.reserve(out.size() + text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        const auto hexValue = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        if (i + 2 >= text.size()) throw std::invalid_argument("bad % escape");
        const int high = hexValue(text[i + 1]), low = hexValue(text[i + 2]);
        if (high < 0 || low < 0) throw std::invalid_argument("bad % escape");
        out += static_cast<char>(high * 16 + low);
        i += 2;
    }
}

inline std::string percentDecode(std::string_view text) {
    std::string out;
    appendPercentDecodedStrict(out, text);
    return out;
}

inline int parseBoundedNumber(std::string_view text, int lowest, int highest, const char* what) {
    if (text.empty() || text.size() > 9) throw std::invalid_argument(std::string("bad ") + what);
    int value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') throw std::invalid_argument(std::string("bad ") + what);
        value = value * 10 + (c - '0');
    }
    if (value < lowest || value > highest) throw std::invalid_argument(std::string(what) + " out of range");
    return value;
}

/// Throws std::invalid_argument for a malformed URL; the message never contains the password.
inline RedisEndpoint parseRedisUrl(std::string_view url) {
    constexpr std::string_view kScheme = "redis://";
    if (!startsWithNoCase(url, kScheme)) throw std::invalid_argument("mca: a Redis URL starts with redis://");
    std::string_view rest = url.substr(kScheme.size());
    RedisEndpoint endpoint;
    try {
        if (const auto query = rest.find('?'); query != std::string_view::npos) {
            const std::string_view parameter = rest.substr(query + 1);
            if (parameter.rfind("timeout=", 0) != 0) throw std::invalid_argument("unknown query parameter");
            endpoint.timeout = std::chrono::milliseconds(parseBoundedNumber(parameter.substr(8), 1, 60000, "timeout"));
            rest = rest.substr(0, query);
        }
        if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
            if (slash + 1 < rest.size())
                endpoint.database = parseBoundedNumber(rest.substr(slash + 1), 0, 1 << 20, "db");
            rest = rest.substr(0, slash);
        }
        if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
            const std::string_view credentials = rest.substr(0, at);
            const auto colon = credentials.find(':');
            if (colon == std::string_view::npos) throw std::invalid_argument("credentials need user:password");
            endpoint.user = percentDecode(credentials.substr(0, colon));
            appendPercentDecodedStrict(endpoint.password.buffer(), credentials.substr(colon + 1));
            rest = rest.substr(at + 1);
        }
        std::string_view host = rest;
        if (!host.empty() && host.front() == '[') {  // [IPv6]:port
            const auto close = host.find(']');
            if (close == std::string_view::npos) throw std::invalid_argument("unclosed [");
            endpoint.host = std::string(host.substr(1, close - 1));
            host = host.substr(close + 1);
            if (!host.empty()) {
                if (host.front() != ':') throw std::invalid_argument("junk after ]");
                endpoint.port = parseBoundedNumber(host.substr(1), 1, 65535, "port");
            }
        } else {
            if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
                endpoint.port = parseBoundedNumber(host.substr(colon + 1), 1, 65535, "port");
                host = host.substr(0, colon);
            }
            endpoint.host = std::string(host);
        }
        if (endpoint.host.empty()) throw std::invalid_argument("no host");
    } catch (const std::invalid_argument& problem) {
        throw std::invalid_argument(std::string("mca: malformed Redis URL (") + problem.what() + ")");
    }
    return endpoint;
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
