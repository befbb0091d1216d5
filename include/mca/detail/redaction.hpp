#pragma once

// Removing secrets from text that reaches a message or a log line: a server's error body, and
// libcurl's error text. A server that echoes what it was sent may write a secret raw, JSON-,
// form-, percent- or HTML-escaped, or base64-encoded; each of these is removed, and text that
// is decoded (a JSON error body) is redacted again after decoding. Runs on the engine thread.

#include "../version.hpp"
#include "encoding.hpp"
#include "json_fields.hpp"
#include "secret.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

inline constexpr std::string_view kRedactedSecret = "***";

namespace redaction_detail {

/// One character of a secret: its bytes, and its code point when they are valid UTF-8 (an
/// encoder escapes code points, not bytes).
struct Unit {
    std::string_view bytes;
    std::int32_t codePoint = -1;
};

inline std::vector<Unit> unitsOf(std::string_view secret) {
    std::vector<Unit> units;
    for (std::size_t at = 0; at < secret.size();) {
        const auto byte = static_cast<unsigned char>(secret[at]);
        std::size_t length = byte < 0x80           ? 1
                             : (byte >> 5) == 0x6  ? 2
                             : (byte >> 4) == 0xE  ? 3
                             : (byte >> 3) == 0x1E ? 4
                                                   : 0;
        std::int32_t codePoint = length == 1   ? byte
                                 : length == 2 ? (byte & 0x1F)
                                 : length == 3 ? (byte & 0x0F)
                                               : (byte & 0x07);
        bool valid = length != 0 && at + length <= secret.size();
        for (std::size_t i = 1; valid && i < length; ++i) {
            const auto next = static_cast<unsigned char>(secret[at + i]);
            valid = (next & 0xC0) == 0x80;
            codePoint = (codePoint << 6) | (next & 0x3F);
        }
        if (!valid) {
            units.push_back({secret.substr(at, 1), -1});
            at += 1;
        } else {
            units.push_back({secret.substr(at, length), codePoint});
            at += length;
        }
    }
    return units;
}

inline int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// The value of `digits` hex digits at `at`, or -1.
inline std::int32_t hexAt(std::string_view text, std::size_t at, std::size_t digits) {
    if (at + digits > text.size()) return -1;
    std::int32_t value = 0;
    for (std::size_t i = 0; i < digits; ++i) {
        const int digit = hexValue(text[at + i]);
        if (digit < 0) return -1;
        value = value * 16 + digit;
    }
    return value;
}

inline void addEnd(std::vector<std::size_t>& ends, std::size_t end) {
    for (const std::size_t known : ends) {
        if (known == end) return;
    }
    ends.push_back(end);
}

/// Where `unit` ends when it starts at `at`, for each way of writing it: its bytes each raw,
/// %XX (either case) or, for a space, '+'; a JSON escape (\" \\ \/ \b \f \n \r \t \uXXXX,
/// surrogate pairs); an HTML character reference (&#NN; &#xHH; &amp; &lt; &gt; &quot; &apos;).
inline void unitEnds(std::string_view text, std::size_t at, const Unit& unit, std::vector<std::size_t>& ends,
                     std::vector<std::size_t>& scratch) {
    // Byte by byte: raw, percent-encoded, or '+' for a space.
    scratch.assign(1, at);
    for (const char byte : unit.bytes) {
        const std::size_t count = scratch.size();
        for (std::size_t i = 0; i < count; ++i) {
            const std::size_t from = scratch[i];
            if (from < text.size() && text[from] == byte) scratch.push_back(from + 1);
            if (from < text.size() && text[from] == '%' &&
                hexAt(text, from + 1, 2) == static_cast<unsigned char>(byte)) {
                scratch.push_back(from + 3);
            }
            if (byte == ' ' && from < text.size() && text[from] == '+') scratch.push_back(from + 1);
        }
        scratch.erase(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(count));
        if (scratch.empty()) break;
    }
    for (const std::size_t end : scratch) addEnd(ends, end);

    const std::int32_t codePoint = unit.codePoint;
    if (codePoint < 0 || at >= text.size()) return;
    if (text[at] == '\\' && at + 1 < text.size()) {  // JSON
        const char escape = text[at + 1];
        const bool shortForm = (escape == '"' && codePoint == '"') || (escape == '\\' && codePoint == '\\') ||
                               (escape == '/' && codePoint == '/') || (escape == 'b' && codePoint == 0x08) ||
                               (escape == 'f' && codePoint == 0x0C) || (escape == 'n' && codePoint == '\n') ||
                               (escape == 'r' && codePoint == '\r') || (escape == 't' && codePoint == '\t');
        if (shortForm) addEnd(ends, at + 2);
        if (escape == 'u') {
            const std::int32_t first = hexAt(text, at + 2, 4);
            if (first == codePoint) addEnd(ends, at + 6);
            if (codePoint > 0xFFFF && first >= 0xD800 && first <= 0xDBFF && at + 8 <= text.size() &&
                text[at + 6] == '\\' && text[at + 7] == 'u') {
                const std::int32_t second = hexAt(text, at + 8, 4);
                if (second >= 0xDC00 && second <= 0xDFFF &&
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00) == codePoint) {
                    addEnd(ends, at + 12);
                }
            }
        }
    }
    if (text[at] == '&') {  // HTML
        const std::string_view rest = text.substr(at);
        for (const auto& [name, value] : {std::pair<std::string_view, std::int32_t>{"&amp;", '&'},
                                          {"&lt;", '<'},
                                          {"&gt;", '>'},
                                          {"&quot;", '"'},
                                          {"&apos;", '\''}}) {
            if (value == codePoint && rest.substr(0, name.size()) == name) addEnd(ends, at + name.size());
        }
        if (rest.size() > 3 && rest[1] == '#') {
            const bool hex = rest[2] == 'x' || rest[2] == 'X';
            std::size_t digitsAt = hex ? 3 : 2, end = digitsAt;
            std::int64_t value = 0;
            while (end < rest.size() && end - digitsAt < 8) {
                const int digit =
                    hex ? hexValue(rest[end]) : (rest[end] >= '0' && rest[end] <= '9' ? rest[end] - '0' : -1);
                if (digit < 0) break;
                value = value * (hex ? 16 : 10) + digit;
                ++end;
            }
            if (end > digitsAt && end < rest.size() && rest[end] == ';' && value == codePoint)
                addEnd(ends, at + end + 1);
        }
    }
}

/// Where the longest encoded occurrence of `units` starting at `at` ends, or `at` for none.
inline std::size_t matchAt(std::string_view text, std::size_t at, const std::vector<Unit>& units,
                           std::vector<std::size_t>& current, std::vector<std::size_t>& next,
                           std::vector<std::size_t>& scratch) {
    current.assign(1, at);
    for (const Unit& unit : units) {
        next.clear();
        for (const std::size_t from : current) unitEnds(text, from, unit, next, scratch);
        if (next.empty()) return at;
        current.swap(next);
    }
    std::size_t longest = at;
    for (const std::size_t end : current) longest = std::max(longest, end);
    return longest;
}

/// Replaces every encoded occurrence of `needle` in `text`, scanning once, left to right.
inline void redactEncoded(std::string& text, std::string_view needle) {
    if (needle.empty() || text.empty()) return;
    const std::vector<Unit> units = unitsOf(needle);
    std::vector<std::size_t> current, next, scratch;
    std::string out;
    std::size_t copiedUpTo = 0;
    for (std::size_t at = 0; at < text.size();) {
        const std::size_t end = matchAt(text, at, units, current, next, scratch);
        if (end == at) {
            ++at;
            continue;
        }
        if (out.empty()) out.reserve(text.size());
        out.append(text, copiedUpTo, at - copiedUpTo).append(kRedactedSecret);
        copiedUpTo = at = end;
    }
    if (copiedUpTo == 0) return;  // nothing matched
    out.append(text, copiedUpTo, std::string::npos);
    wipeString(text);  // it held the secret
    text.swap(out);
}

/// The part of base64(secret) that does not depend on the bytes around the secret, when the
/// secret starts `offset` (0, 1 or 2) bytes into a base64 group: what a server that base64-
/// encodes a longer text holding the secret (e.g. "client:secret") would show.
inline std::string base64Core(std::string_view secret, std::size_t offset) {
    SecretString shifted;
    shifted.buffer().assign(offset, '\0');
    shifted.buffer().append(secret);
    SecretString encoded;
    appendBase64(encoded.buffer(), shifted.view());
    // Character i covers bits [6i, 6i + 6); the secret covers [8 offset, 8 (offset + size)).
    const std::size_t first = (8 * offset + 5) / 6;
    const std::size_t last = 8 * (offset + secret.size()) / 6;  // one past the last whole one
    return last > first ? encoded.view().substr(first, last - first) : std::string();
}

/// base64 cores shorter than this are not redacted: a few base64 characters occur anywhere.
inline constexpr std::size_t kShortestBase64Core = 8;

}  // namespace redaction_detail

/// Removes `secret` from `text` (no-op for an empty secret), written in any of the ways a server
/// could echo it: raw, JSON-escaped (any escape any JSON encoder writes, \/ and \uXXXX included),
/// form- or percent-encoded, as HTML character references, or base64-encoded (alone or inside a
/// longer encoded text, standard and URL alphabets). Each occurrence becomes "***"; the text is
/// scanned once, so a secret that matches the replacement cannot loop.
inline void redact(std::string& text, std::string_view secret) {
    if (secret.empty()) return;
    redaction_detail::redactEncoded(text, secret);
    for (std::size_t offset = 0; offset < 3; ++offset) {
        std::string core = redaction_detail::base64Core(secret, offset);
        if (core.size() >= redaction_detail::kShortestBase64Core) {
            redaction_detail::redactEncoded(text, core);
            for (char& c : core) c = c == '+' ? '-' : c == '/' ? '_' : c;  // base64url
            redaction_detail::redactEncoded(text, core);
        }
        wipeString(core);
    }
}

/// redact() for each of `secrets`, longest first: a secret inside another (the secret inside
/// the Basic header that carries it) must not break up the longer one before it is found.
inline void redactAll(std::string& text, const std::vector<SecretString>& secrets) {
    std::vector<std::string_view> longestFirst;
    longestFirst.reserve(secrets.size());
    for (const auto& secret : secrets) longestFirst.emplace_back(secret.view());
    std::stable_sort(longestFirst.begin(), longestFirst.end(),
                     [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
    for (const std::string_view secret : longestFirst) redact(text, secret);
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
/// `error_description` when the body is an OAuth error, otherwise the start of the body.
/// Redaction comes after every decoding step and before anything is cut short (a secret cut in
/// two would survive it): the JSON is decoded (only those two members are kept) and the decoded
/// text redacted; a body that is not an OAuth error is redacted as it came, escapes and all.
/// Then the text is made printable and cut to 200 characters; then token-like runs go.
inline std::string describeErrorBody(std::string_view body, const std::vector<SecretString>& secrets) {
    constexpr std::size_t kMaxShown = 200;
    const auto printable = [](std::string_view text) { return printablePrefix(text, kMaxShown); };
    JsonField error, description;
    if (readJsonFields(body, {{"error", &error}, {"error_description", &description}}) == JsonShape::Object &&
        error.kind == JsonField::Kind::String) {
        std::string text = std::move(error.text);
        if (description.kind == JsonField::Kind::String) text.append(": ").append(description.text);
        wipeString(description.text);
        redactAll(text, secrets);
        const std::string shown = printable(text);
        wipeString(text);
        return redactTokenLikeRuns(shown);
    }
    const std::string_view trimmed = trimWhitespace(body);
    if (trimmed.empty()) return "empty body";
    // Only the start is shown: redact a window long enough to hold any encoded secret that
    // begins within it (at most 12 bytes a character: a JSON surrogate pair), then cut.
    std::size_t longest = 0;
    for (const auto& secret : secrets) longest = std::max(longest, secret.view().size());
    std::string start(trimmed.substr(0, kMaxShown + 12 * longest));
    const bool cut = trimmed.size() > start.size();
    redactAll(start, secrets);
    std::string shown = printable(start);
    if (cut && shown.size() <= kMaxShown) shown += "...";
    wipeString(start);
    return "body \"" + redactTokenLikeRuns(shown) + "\"";
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
