#pragma once

// Parsers for what the token server sends back: the JSON token reply, the JWT `exp` claim,
// OAuth error replies, and the Date / Retry-After headers. All input here is untrusted.

#include "encoding.hpp"

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mca::detail {

using Seconds = std::chrono::seconds;
using SystemTime = std::chrono::system_clock::time_point;

/// Longest lifetime believed from a server; longer claims are clamped so that a bogus
/// reply cannot pin a token in the cache for years.
inline constexpr Seconds kMaxTokenLifetime{24 * 3600};

/// Why a reply could not be used; the client reports it as Errc::InvalidResponse.
struct InvalidReply : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct TokenReply {
    std::string accessToken;
    std::optional<Seconds> expiresIn;    // from `expires_in`, clamped to [0, kMaxTokenLifetime]
    std::optional<std::int64_t> jwtExp;  // the access token's `exp` claim, when it is a JWT
};

/// A bearer token goes verbatim into an HTTP header: only visible ASCII is safe there
/// (CR, LF or NUL would let the server inject headers into the caller's requests).
inline bool isHeaderSafeToken(std::string_view token) {
    return !token.empty() && std::all_of(token.begin(), token.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte > 0x20 && byte < 0x7F;
    });
}

/// The `exp` claim of a compact JWS, or nullopt when the token is not a JWT with a numeric exp.
inline std::optional<std::int64_t> jwtExpiry(std::string_view token) {
    const auto firstDot = token.find('.');
    if (firstDot == std::string_view::npos) return std::nullopt;
    const auto secondDot = token.find('.', firstDot + 1);
    if (secondDot == std::string_view::npos) return std::nullopt;
    const auto payload = base64UrlDecode(token.substr(firstDot + 1, secondDot - firstDot - 1));
    if (!payload) return std::nullopt;
    const auto claims = nlohmann::json::parse(*payload, nullptr, /*allow_exceptions=*/false);
    if (!claims.is_object()) return std::nullopt;
    const auto exp = claims.find("exp");
    if (exp == claims.end() || !exp->is_number()) return std::nullopt;
    const double value = exp->get<double>();
    if (!std::isfinite(value) || value < 0 || value > 1e15) return std::nullopt;
    return static_cast<std::int64_t>(value);
}

/// `expires_in` as a number of seconds: a JSON number or a numeric string; nullopt when absent.
/// Throws InvalidReply for a negative, non-numeric or otherwise unusable value.
inline std::optional<Seconds> parseExpiresIn(const nlohmann::json& reply) {
    const auto field = reply.find("expires_in");
    if (field == reply.end() || field->is_null()) return std::nullopt;
    double value = 0;
    if (field->is_number()) {
        value = field->get<double>();
    } else if (field->is_string()) {
        const auto& text = field->get_ref<const std::string&>();
        const std::string_view digits = trimWhitespace(text);
        if (digits.empty() || digits.size() > 18 ||
            !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            throw InvalidReply("token reply has a non-numeric expires_in");
        }
        value = std::stod(std::string(digits));
    } else {
        throw InvalidReply("token reply has an expires_in that is not a number");
    }
    if (!std::isfinite(value) || value < 0) {
        throw InvalidReply("token reply has a negative expires_in");
    }
    return Seconds(static_cast<std::int64_t>(std::min(value, double(kMaxTokenLifetime.count()))));
}

/// Parses a 200 reply body. Throws InvalidReply; messages never quote the token.
inline TokenReply parseTokenReply(std::string_view body) {
    const auto reply = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (reply.is_discarded()) {
        throw InvalidReply("token reply is not JSON");
    }
    if (!reply.is_object()) {
        throw InvalidReply("token reply is not a JSON object");
    }
    const auto token = reply.find("access_token");
    if (token == reply.end()) {
        throw InvalidReply("token reply has no access_token");
    }
    if (!token->is_string()) {
        throw InvalidReply("token reply's access_token is not a string");
    }
    TokenReply result;
    result.accessToken = token->get<std::string>();
    if (result.accessToken.empty()) {
        throw InvalidReply("token reply's access_token is empty");
    }
    if (!isHeaderSafeToken(result.accessToken)) {
        throw InvalidReply("token reply's access_token holds control, space or non-ASCII bytes");
    }
    result.expiresIn = parseExpiresIn(reply);
    if (!result.expiresIn) result.jwtExp = jwtExpiry(result.accessToken);  // decoded only when needed
    return result;
}

/// How long the token stays valid from the moment its reply was received: `expires_in` when
/// given, otherwise the JWT `exp` measured against the server's `Date` (so a skewed local clock
/// does not matter). nullopt = unknown.
inline std::optional<Seconds> tokenLifetime(const TokenReply& reply, std::optional<SystemTime> serverDate,
                                            SystemTime localNow) {
    if (reply.expiresIn) return reply.expiresIn;
    if (!reply.jwtExp) return std::nullopt;
    const auto issuedAt = std::chrono::duration_cast<Seconds>((serverDate ? *serverDate : localNow).time_since_epoch());
    return std::clamp(Seconds{*reply.jwtExp - issuedAt.count()}, Seconds{0}, kMaxTokenLifetime);
}

/// An HTTP date (IMF-fixdate, RFC 850 or asctime), parsed by libcurl; nullopt when unreadable.
inline std::optional<SystemTime> parseHttpDate(std::string_view text) {
    text = trimWhitespace(text);
    if (text.empty() || text.size() > 64) return std::nullopt;
    const std::string terminated(text);
    const time_t parsed = curl_getdate(terminated.c_str(), nullptr);
    // curl reads years up to 9999; system_clock's nanoseconds end in 2262.
    constexpr auto kLatest = std::chrono::duration_cast<Seconds>(SystemTime::duration::max()).count();
    if (parsed < 0 || parsed > kLatest) return std::nullopt;
    return std::chrono::system_clock::from_time_t(parsed);
}

/// `Retry-After` (delta-seconds or an HTTP date) as a wait from now; nullopt when unreadable.
inline std::optional<std::chrono::milliseconds> parseRetryAfter(std::string_view text, SystemTime now) {
    text = trimWhitespace(text);
    if (text.empty()) return std::nullopt;
    if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        if (text.size() > 9) return std::chrono::hours(24 * 365);  // absurd but well-formed: "very long"
        return std::chrono::seconds(std::stol(std::string(text)));
    }
    const auto date = parseHttpDate(text);
    if (!date) return std::nullopt;
    return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(*date - now));
}

/// Replaces every occurrence of `secret` in `text` (no-op for an empty secret). The search
/// resumes after each replacement, so a secret that matches the replacement cannot loop.
inline void redact(std::string& text, std::string_view secret) {
    constexpr std::string_view kReplacement = "***";
    if (secret.empty()) return;
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + kReplacement.size())) {
        text.replace(at, secret.size(), kReplacement);
    }
}

/// Replaces every run of 32 or more characters that could be a token or a credential (base64,
/// base64url or JWT alphabet) with "<redacted>": an error body may echo what the client sent or
/// a token it once received, and neither belongs in a message or a log line.
inline std::string redactTokenLikeRuns(std::string_view text) {
    constexpr std::size_t kLongestShown = 31;
    const auto tokenChar = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
    };
    std::string out;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t end = at;
        while (end < text.size() && tokenChar(text[end])) ++end;
        if (end == at) {
            out += text[at++];
            continue;
        }
        if (end - at > kLongestShown) {
            out += "<redacted>";
        } else {
            out.append(text.substr(at, end - at));
        }
        at = end;
    }
    return out;
}

/// A short, printable description of an error reply for messages: the OAuth `error` and
/// `error_description` when the body is an OAuth error, otherwise the start of the body with
/// anything unprintable replaced; token-like runs are redacted. The caller also redacts the
/// secret, which may be short.
inline std::string describeErrorBody(std::string_view body) {
    constexpr std::size_t kMaxShown = 200;
    const auto printable = [&](std::string_view text) {
        std::string out;
        for (const char c : text.substr(0, kMaxShown)) {
            const auto byte = static_cast<unsigned char>(c);
            out += (byte >= 0x20 && byte < 0x7F) ? c : '?';
        }
        if (text.size() > kMaxShown) out += "...";
        return out;
    };
    const auto reply = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (reply.is_object()) {
        const auto error = reply.find("error");
        if (error != reply.end() && error->is_string()) {
            std::string text = printable(error->get_ref<const std::string&>());
            const auto description = reply.find("error_description");
            if (description != reply.end() && description->is_string()) {
                text += ": " + printable(description->get_ref<const std::string&>());
            }
            return redactTokenLikeRuns(text);
        }
    }
    if (trimWhitespace(body).empty()) return "empty body";
    return "body \"" + redactTokenLikeRuns(printable(trimWhitespace(body))) + "\"";
}

// TEMPORARY until the redaction change lands.
}  // namespace mca::detail
#include <vector>
#include "secret.hpp"
namespace mca::detail {
inline void redactAll(std::string& text, const std::vector<SecretString>& secrets) {
    for (const auto& secret : secrets) redact(text, secret.view());
}
inline std::string describeErrorBody(std::string_view body, const std::vector<SecretString>& secrets) {
    std::string copy(body);
    redactAll(copy, secrets);
    return describeErrorBody(copy);
}
}  // namespace mca::detail
