#pragma once

// Text encodings the protocol needs: base64 (Basic auth), base64url (JWT), percent-encoding (path).

#include "../version.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

/// Appends the base64 (RFC 4648 §4, padded) of `bytes` to `out`; appending lets secrets be
/// encoded straight into storage that is wiped later.
inline void appendBase64(std::string& out, std::string_view bytes) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.reserve(out.size() + (bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const std::uint32_t n =
            (std::uint8_t(bytes[i]) << 16) | (std::uint8_t(bytes[i + 1]) << 8) | std::uint8_t(bytes[i + 2]);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    if (i + 1 == bytes.size()) {
        const std::uint32_t n = std::uint8_t(bytes[i]) << 16;
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += "==";
    } else if (i + 2 == bytes.size()) {
        const std::uint32_t n = (std::uint8_t(bytes[i]) << 16) | (std::uint8_t(bytes[i + 1]) << 8);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += '=';
    }
}

inline std::string base64Encode(std::string_view bytes) {
    std::string out;
    appendBase64(out, bytes);
    return out;
}

/// Encodes base64url (RFC 4648 §5) without padding, as JWS (RFC 7515 §2) requires.
inline std::string base64UrlEncode(std::string_view bytes) {
    std::string text = base64Encode(bytes);
    for (char& c : text) {
        if (c == '+') c = '-';
        if (c == '/') c = '_';
    }
    while (!text.empty() && text.back() == '=') text.pop_back();
    return text;
}

/// Decodes base64url (RFC 4648 §5), padding optional; nullopt on any other byte.
inline std::optional<std::string> base64UrlDecode(std::string_view text) {
    while (!text.empty() && text.back() == '=') {
        text.remove_suffix(1);
    }
    if (text.size() % 4 == 1) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t buffer = 0;
    int bits = 0;
    for (const char c : text) {
        int value;
        if (c >= 'A' && c <= 'Z')
            value = c - 'A';
        else if (c >= 'a' && c <= 'z')
            value = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            value = c - '0' + 52;
        else if (c == '-')
            value = 62;
        else if (c == '_')
            value = 63;
        else
            return std::nullopt;
        buffer = (buffer << 6) | static_cast<std::uint32_t>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xFF);
        }
    }
    return out;
}

enum class Escaping {
    PathSegment,  // RFC 3986: all but unreserved characters, so any appId is one path segment
    Form,         // application/x-www-form-urlencoded (HTML's rules): space is '+'
};

/// Appends the percent-encoding of `text` (for a URL path segment or a form value) to `out`,
/// reserving the worst case (3 bytes a byte) first: a secret encoded into wiped storage is
/// never regrown, so no copy of it is left in freed memory.
inline void appendPercentEncoded(std::string& out, std::string_view text, Escaping escaping = Escaping::PathSegment) {
    static constexpr char hex[] = "0123456789ABCDEF";
    const bool form = escaping == Escaping::Form;
    out.reserve(out.size() + 3 * text.size());
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        const bool alphanumeric =
            (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') || (byte >= '0' && byte <= '9');
        if (alphanumeric || byte == '-' || byte == '.' || byte == '_' || (form ? byte == '*' : byte == '~')) {
            out += c;
        } else if (form && byte == ' ') {
            out += '+';
        } else {
            out += '%';
            out += hex[byte >> 4];
            out += hex[byte & 15];
        }
    }
}

/// Percent-encodes `text` for a URL path segment or a form value.
inline std::string percentEncode(std::string_view text, Escaping escaping = Escaping::PathSegment) {
    std::string out;
    appendPercentEncoded(out, text, escaping);
    return out;
}

/// Untrusted text as it may appear in a message: at most `limit` bytes, printable ASCII (other
/// bytes become '?'), "..." when cut.
inline std::string printablePrefix(std::string_view text, std::size_t limit) {
    std::string out;
    for (const char c : text.substr(0, limit)) {
        const auto byte = static_cast<unsigned char>(c);
        out += (byte >= 0x20 && byte < 0x7F) ? c : '?';
    }
    if (text.size() > limit) out += "...";
    return out;
}

inline std::string_view trimWhitespace(std::string_view text) {
    const auto isSpace = [](char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
    };
    while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
    while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
    return text;
}

inline bool startsWithNoCase(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; };
        if (lower(text[i]) != lower(prefix[i])) return false;
    }
    return true;
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
