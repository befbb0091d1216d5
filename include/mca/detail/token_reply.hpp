#pragma once

// Parsers for what the token server sends back: the JSON token reply, the JWT `exp` claim, and
// the Date / Retry-After headers. All input here is untrusted: JSON is read field by field
// (json_fields.hpp), never into a document. Error replies are described in redaction.hpp.

#include "../version.hpp"
#include "encoding.hpp"
#include "json_fields.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

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
    JsonField exp;
    if (readJsonFields(*payload, {{"exp", &exp}}) != JsonShape::Object) return std::nullopt;
    if (exp.kind != JsonField::Kind::Number) return std::nullopt;
    const double value = exp.number;
    if (!std::isfinite(value) || value < 0 || value > 1e15) return std::nullopt;
    return static_cast<std::int64_t>(value);
}

/// `expires_in` as a number of seconds: a JSON number or a numeric string; nullopt when absent.
/// Throws InvalidReply for a negative, non-numeric or otherwise unusable value.
inline std::optional<Seconds> parseExpiresIn(const JsonField& field) {
    if (field.kind == JsonField::Kind::Absent || field.kind == JsonField::Kind::Null) return std::nullopt;
    double value = 0;
    if (field.kind == JsonField::Kind::Number) {
        value = field.number;
    } else if (field.kind == JsonField::Kind::String) {
        const std::string_view digits = trimWhitespace(field.text);
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

/// Parses a 200 reply body. Throws InvalidReply; messages never quote the token. Only
/// `access_token` and `expires_in` are kept while reading, so memory stays a small multiple of
/// the body whatever else it holds.
inline TokenReply parseTokenReply(std::string_view body) {
    JsonField token, expiresIn;
    switch (readJsonFields(body, {{"access_token", &token}, {"expires_in", &expiresIn}})) {
        case JsonShape::Invalid:
            throw InvalidReply("token reply is not JSON");
        case JsonShape::TooDeep:
            throw InvalidReply("token reply nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        case JsonShape::NotObject:
            throw InvalidReply("token reply is not a JSON object");
        case JsonShape::Object:
            break;
    }
    if (token.kind == JsonField::Kind::Absent) {
        throw InvalidReply("token reply has no access_token");
    }
    if (token.kind != JsonField::Kind::String) {
        throw InvalidReply("token reply's access_token is not a string");
    }
    TokenReply result;
    result.accessToken = std::move(token.text);
    if (result.accessToken.empty()) {
        throw InvalidReply("token reply's access_token is empty");
    }
    if (!isHeaderSafeToken(result.accessToken)) {
        throw InvalidReply("token reply's access_token holds control, space or non-ASCII bytes");
    }
    result.expiresIn = parseExpiresIn(expiresIn);
    result.jwtExp = jwtExpiry(result.accessToken);  // both are kept: the earlier end wins
    return result;
}

/// How long the token stays valid from the moment its reply was received (`localNow`): the
/// earlier of `expires_in` and the JWT `exp`, when both are known. `exp` is measured against
/// the server's time: its `Date` header, so that a skewed local clock does not matter. A Date
/// names a whole second: when the local clock falls within it, the local clock gives the
/// fraction; otherwise the server's time is taken as the end of that second. Without a Date,
/// the local clock. Whole seconds, rounded down: a token is never kept past its `exp`.
/// nullopt = unknown.
inline std::optional<Seconds> tokenLifetime(const TokenReply& reply, std::optional<SystemTime> serverDate,
                                            SystemTime localNow) {
    std::optional<Seconds> fromExp;
    if (reply.jwtExp) {
        SystemTime serverNow = localNow;
        if (serverDate && (localNow < *serverDate || localNow >= *serverDate + Seconds(1))) {
            serverNow = *serverDate + Seconds(1);
        }
        // In milliseconds: exp is at most 1e15 s, which nanoseconds would overflow.
        using Millis = std::chrono::milliseconds;
        const Millis left = Millis(*reply.jwtExp * 1000) - std::chrono::floor<Millis>(serverNow.time_since_epoch());
        fromExp = std::chrono::floor<Seconds>(std::clamp<Millis>(left, Millis(0), kMaxTokenLifetime));
    }
    if (reply.expiresIn && fromExp) return std::min(*reply.expiresIn, *fromExp);
    if (reply.expiresIn) return reply.expiresIn;
    return fromExp;
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

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
