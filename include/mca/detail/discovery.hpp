#pragma once

// Authorization server discovery without the network: where an issuer's metadata lives (RFC 8414
// §3.1, then OpenID Connect Discovery 1.0 §4), and what the client takes from the document. The
// document is untrusted: it is read with a SAX handler that keeps only the three members used,
// within fixed bounds (size, depth, string length, list length), never into a DOM. Pure
// functions, safe on any thread.

#include "../error.hpp"
#include "../version.hpp"
#include "encoding.hpp"
#include "handles.hpp"

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

inline constexpr std::string_view kOAuthMetadataSuffix = "/.well-known/oauth-authorization-server";
inline constexpr std::string_view kOpenIdConfigurationSuffix = "/.well-known/openid-configuration";

/// Bounds on a metadata document. Real ones are a few KiB, nest 2 or 3 levels and list fewer
/// than 10 client authentication methods (only a handful are registered with IANA).
inline constexpr std::size_t kMaxMetadataBytes = 256 * 1024;
inline constexpr std::size_t kMaxMetadataDepth = 32;
inline constexpr std::size_t kMaxMetadataString = 8 * 1024;  // in the members read
inline constexpr std::size_t kMaxListedAuthMethods = 64;

/// What the client uses of an authorization server's metadata.
struct ServerMetadata {
    std::string issuer;
    std::string tokenEndpoint;
    std::vector<std::string> authMethods;  // token_endpoint_auth_methods_supported; empty: not listed
    bool authMethodsListed = false;        // the field was present (an empty list present means: none)
};

namespace discovery_detail {

/// An absolute http(s) URL split as written. Scheme in lower case; `authority` is what lies
/// between "//" and the first '/', '?' or '#'; `path` runs to the first '?' or '#'.
struct UrlParts {
    std::string scheme;
    std::string_view authority;
    std::string_view path;
    bool hasQuery = false;
    bool hasFragment = false;
};

/// Splits `url` when it is an absolute http(s) URL with a host: printable ASCII only (no
/// spaces, controls, NUL or raw non-ASCII, which libcurl's parser would not all refuse),
/// written "scheme://authority..." (libcurl also reads "https:/h" and "https:///h", whose host
/// is not where the text puts it), and accepted by libcurl with a non-empty host, as libcurl
/// is what fetches it.
inline std::optional<UrlParts> splitHttpUrl(std::string_view url) {
    const bool printable = std::all_of(url.begin(), url.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte > 0x20 && byte < 0x7F;
    });
    if (!printable) return std::nullopt;
    UrlParts parts;
    if (startsWithNoCase(url, "https://")) {
        parts.scheme = "https";
    } else if (startsWithNoCase(url, "http://")) {
        parts.scheme = "http";
    } else {
        return std::nullopt;
    }
    const std::string_view rest = url.substr(parts.scheme.size() + 3);
    const std::size_t authorityEnd = std::min(rest.find_first_of("/?#"), rest.size());
    parts.authority = rest.substr(0, authorityEnd);
    const std::string_view afterAuthority = rest.substr(authorityEnd);
    const std::size_t pathEnd = std::min(afterAuthority.find_first_of("?#"), afterAuthority.size());
    parts.path = afterAuthority.substr(0, pathEnd);
    const std::string_view tail = afterAuthority.substr(pathEnd);
    parts.hasFragment = tail.find('#') != std::string_view::npos;
    parts.hasQuery = !tail.empty() && tail.front() == '?';
    if (parts.authority.empty()) return std::nullopt;

    const std::string terminated(url);
    const CurlUrlPtr parsed(curl_url());
    if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, terminated.c_str(), 0) != CURLUE_OK) return std::nullopt;
    char* host = nullptr;
    const bool hasHost =
        curl_url_get(parsed.get(), CURLUPART_HOST, &host, 0) == CURLUE_OK && host != nullptr && *host != '\0';
    curl_free(host);
    if (!hasHost) return std::nullopt;
    return parts;
}

/// Untrusted text as it may appear in a message: printable ASCII (other bytes become '?'),
/// at most 256 characters.
inline std::string shown(std::string_view text) { return printablePrefix(text, 256); }

/// shown() for a URL, with any user information ("user:password@") replaced by "***@".
inline std::string shownUrl(std::string_view url) {
    const std::size_t schemeEnd = url.find("://");
    if (schemeEnd != std::string_view::npos) {
        const std::size_t authorityStart = schemeEnd + 3;
        const std::size_t authorityEnd = std::min(url.find_first_of("/?#", authorityStart), url.size());
        const std::size_t at = url.substr(0, authorityEnd).rfind('@');
        if (at != std::string_view::npos && at >= authorityStart) {
            return shown(std::string(url.substr(0, authorityStart)) + "***" + std::string(url.substr(at)));
        }
    }
    return shown(url);
}

/// The SAX handler: tracks depth, which member (if any) the current top-level key names, and
/// keeps the values of `issuer`, `token_endpoint` and `token_endpoint_auth_methods_supported`.
/// A value of the wrong type in those members, a duplicate of them, or a bound exceeded stops
/// the parse with `failure` set; everything else is skipped without being kept.
class MetadataReader {
  public:
    using Json = nlohmann::json;

    bool null() { return nonString("null"); }
    bool boolean(bool) { return nonString("a boolean"); }
    bool number_integer(Json::number_integer_t) { return nonString("a number"); }
    bool number_unsigned(Json::number_unsigned_t) { return nonString("a number"); }
    bool number_float(Json::number_float_t value, const Json::string_t&) {
        if (!std::isfinite(value)) return false;  // "1e400": not JSON, as nlohmann's DOM parser says
        return nonString("a number");
    }
    bool binary(Json::binary_t&) { return nonString("binary"); }
    bool string(Json::string_t& value) {
        if (inAuthMethods()) {
            if (!fits(value, kAuthMethods)) return false;
            if (metadata.authMethods.size() == kMaxListedAuthMethods) {
                return fail(std::string(kAuthMethods) + " lists more than " + std::to_string(kMaxListedAuthMethods) +
                            " methods");
            }
            metadata.authMethods.push_back(std::move(value));
            return true;
        }
        switch (take()) {
            case Member::Issuer:
                if (!fits(value, kIssuer)) return false;
                metadata.issuer = std::move(value);
                hasIssuer = true;
                return true;
            case Member::TokenEndpoint:
                if (!fits(value, kTokenEndpoint)) return false;
                metadata.tokenEndpoint = std::move(value);
                hasTokenEndpoint = true;
                return true;
            case Member::AuthMethods:
                return fail(std::string(kAuthMethods) + " is a string, not an array of strings");
            case Member::None:
                break;
        }
        return true;
    }
    bool start_object(std::size_t) {
        if (depth_ == 0) topIsObject_ = true;
        return nonString("an object") && open();
    }
    bool end_object() { return close(); }
    bool start_array(std::size_t) {
        if (depth_ == 1 && current_ == Member::AuthMethods) {
            take();
            metadata.authMethodsListed = true;
            authMethodsDepth_ = depth_ + 1;
            return open();
        }
        return nonString("an array") && open();
    }
    bool end_array() {
        if (depth_ == authMethodsDepth_) authMethodsDepth_ = 0;
        return close();
    }
    bool key(Json::string_t& name) {
        if (depth_ != 1) return true;
        current_ = Member::None;
        Member named = Member::None;
        if (name == kIssuer) named = Member::Issuer;
        if (name == kTokenEndpoint) named = Member::TokenEndpoint;
        if (name == kAuthMethods) named = Member::AuthMethods;
        if (named == Member::None) return true;
        // A duplicate of a member read is refused rather than resolved: JSON parsers disagree on
        // which one wins, and a document that names two issuers or two endpoints is not one to
        // act on. Duplicates of other members are not looked at.
        const unsigned bit = 1u << static_cast<unsigned>(named);
        if ((seen_ & bit) != 0) return fail(name + " appears twice");
        seen_ |= bit;
        current_ = named;
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

    bool topIsObject() const { return topIsObject_; }

    ServerMetadata metadata;
    bool hasIssuer = false;
    bool hasTokenEndpoint = false;
    std::optional<std::string> failure;  // why the handler stopped the parse, when it did

  private:
    enum class Member : unsigned { None, Issuer, TokenEndpoint, AuthMethods };
    static constexpr std::string_view kIssuer = "issuer";
    static constexpr std::string_view kTokenEndpoint = "token_endpoint";
    static constexpr std::string_view kAuthMethods = "token_endpoint_auth_methods_supported";

    bool inAuthMethods() const { return authMethodsDepth_ != 0 && depth_ == authMethodsDepth_; }

    /// The member whose value starts now; None below the top level or after an unread key.
    Member take() {
        if (depth_ != 1) return Member::None;
        const Member member = current_;
        current_ = Member::None;
        return member;
    }
    /// A value other than a string (`what` names its type): refused where a string is read.
    bool nonString(const char* what) {
        if (inAuthMethods()) return fail(std::string(kAuthMethods) + " holds " + what + ", not only strings");
        switch (take()) {
            case Member::Issuer:
                return fail(std::string(kIssuer) + " is " + what + ", not a string");
            case Member::TokenEndpoint:
                return fail(std::string(kTokenEndpoint) + " is " + what + ", not a string");
            case Member::AuthMethods:
                return fail(std::string(kAuthMethods) + " is " + what + ", not an array of strings");
            case Member::None:
                break;
        }
        return true;
    }
    bool fits(const std::string& value, std::string_view member) {
        if (value.size() <= kMaxMetadataString) return true;
        return fail(std::string(member) + " holds a string longer than " + std::to_string(kMaxMetadataString) +
                    " bytes");
    }
    bool fail(std::string why) {
        failure = std::move(why);
        return false;
    }
    bool open() {
        if (++depth_ > kMaxMetadataDepth)
            return fail("nested deeper than " + std::to_string(kMaxMetadataDepth) + " levels");
        return true;
    }
    bool close() {
        --depth_;
        return true;
    }

    Member current_ = Member::None;
    unsigned seen_ = 0;                 // one bit per Member already named
    std::size_t depth_ = 0;             // 1 inside the top-level object
    std::size_t authMethodsDepth_ = 0;  // depth of the auth methods' items while inside that list
    bool topIsObject_ = false;
};

}  // namespace discovery_detail

/// The two metadata URLs to try, in order. First RFC 8414 §3.1: the well-known segment goes
/// between the host and the issuer's path, whose terminating '/' is removed first
/// ("https://h/tenant/x" -> "https://h/.well-known/oauth-authorization-server/tenant/x"; "https://h"
/// and "https://h/" -> "https://h/.well-known/oauth-authorization-server"). Then OpenID Connect
/// Discovery 1.0 §4: the issuer without its trailing '/', plus "/.well-known/openid-configuration".
/// The issuer is used as written, not normalised: the document must name exactly this string.
/// @throws Error(Errc::MissingServerUrl) unless `issuer` is an absolute http(s) URL with a host,
/// without query or fragment (RFC 8414 §2), without user information, in printable ASCII.
inline std::array<std::string, 2> discoveryUrls(std::string_view issuer) {
    const auto parts = discovery_detail::splitHttpUrl(issuer);
    if (!parts) {
        throw Error(Errc::MissingServerUrl, "issuer is not an absolute http(s) URL with a host: \"" +
                                                discovery_detail::shownUrl(issuer) + "\"");
    }
    if (parts->hasQuery || parts->hasFragment) {
        throw Error(Errc::MissingServerUrl, "issuer has a query or fragment, which RFC 8414 forbids: \"" +
                                                discovery_detail::shownUrl(issuer) + "\"");
    }
    if (parts->authority.find('@') != std::string_view::npos) {
        throw Error(Errc::MissingServerUrl,
                    "issuer holds user information (\"user@\"): \"" + discovery_detail::shownUrl(issuer) + "\"");
    }
    std::string_view path = parts->path;
    if (!path.empty() && path.back() == '/') path.remove_suffix(1);
    std::string_view base = issuer;  // the scheme and authority as written
    base.remove_suffix(parts->path.size());
    std::string_view trimmedIssuer = issuer;
    if (trimmedIssuer.back() == '/') trimmedIssuer.remove_suffix(1);

    std::string rfc8414(base);
    rfc8414.append(kOAuthMetadataSuffix).append(path);
    std::string openId(trimmedIssuer);
    openId.append(kOpenIdConfigurationSuffix);
    return {std::move(rfc8414), std::move(openId)};
}

/// Parses and validates a metadata document (RFC 8414 or OpenID Connect Discovery): `issuer`
/// must equal `expectedIssuer` exactly (RFC 8414 §3.3: no normalisation, so a trailing '/' or a
/// letter's case matters), `token_endpoint` must be an absolute URL with a host, without
/// fragment (RFC 6749 §3.2), with the issuer's scheme; `token_endpoint_auth_methods_supported`,
/// when present, an array of strings. Other members are ignored. A member read that appears
/// twice is refused (parsers disagree on which one wins).
/// Bounds: kMaxMetadataBytes of document, kMaxMetadataDepth levels, kMaxMetadataString bytes a
/// string read, kMaxListedAuthMethods methods; nothing else of the document is kept.
/// @throws Error(Errc::InvalidResponse) saying what is wrong; it quotes both issuers when they
/// differ (public URLs), in printable ASCII and cut short.
inline ServerMetadata parseServerMetadata(std::string_view body, std::string_view expectedIssuer) {
    const auto invalid = [](const std::string& why) { return Error(Errc::InvalidResponse, "server metadata: " + why); };
    if (body.size() > kMaxMetadataBytes) {
        throw invalid("larger than " + std::to_string(kMaxMetadataBytes) + " bytes (" + std::to_string(body.size()) +
                      ")");
    }
    discovery_detail::MetadataReader reader;
    bool parsed = false;
    try {
        parsed = nlohmann::json::sax_parse(body.begin(), body.end(), &reader);
    } catch (const nlohmann::json::exception&) {
        parsed = false;
    }
    if (reader.failure) throw invalid(*reader.failure);
    if (!parsed) throw invalid("not JSON");
    if (!reader.topIsObject()) throw invalid("not a JSON object");

    ServerMetadata metadata = std::move(reader.metadata);
    if (!reader.hasIssuer) throw invalid("no issuer");
    if (metadata.issuer != expectedIssuer) {
        throw invalid("issuer \"" + discovery_detail::shownUrl(metadata.issuer) + "\" is not the configured issuer \"" +
                      discovery_detail::shownUrl(expectedIssuer) + "\" (they must be identical, RFC 8414 section 3.3)");
    }
    if (!reader.hasTokenEndpoint) throw invalid("no token_endpoint");
    const auto endpoint = discovery_detail::splitHttpUrl(metadata.tokenEndpoint);
    if (!endpoint) {
        throw invalid("token_endpoint is not an absolute http(s) URL with a host: \"" +
                      discovery_detail::shownUrl(metadata.tokenEndpoint) + "\"");
    }
    if (endpoint->hasFragment) {
        throw invalid("token_endpoint has a fragment, which RFC 6749 forbids: \"" +
                      discovery_detail::shownUrl(metadata.tokenEndpoint) + "\"");
    }
    const auto issuerParts = discovery_detail::splitHttpUrl(metadata.issuer);
    if (!issuerParts) throw invalid("issuer is not an absolute http(s) URL with a host");
    if (issuerParts->scheme != endpoint->scheme) {
        throw invalid("token_endpoint \"" + discovery_detail::shownUrl(metadata.tokenEndpoint) +
                      "\" does not use the issuer's scheme");
    }
    return metadata;
}

/// Checks that the server accepts `method` (e.g. "private_key_jwt") at its token endpoint, when
/// its metadata lists token_endpoint_auth_methods_supported. Nothing is checked when the list is
/// absent (RFC 8414 §2 then means client_secret_basic, yet servers that omit it commonly accept
/// more: a request is the better judge).
/// @throws Error(Errc::InvalidConfiguration) naming `method` and the methods listed.
inline void requireAuthMethod(const ServerMetadata& metadata, std::string_view method) {
    if (!metadata.authMethodsListed) return;
    const auto& listed = metadata.authMethods;
    if (std::find(listed.begin(), listed.end(), method) != listed.end()) return;
    std::string names;
    for (const auto& name : listed) {
        if (!names.empty()) names += ", ";
        if (names.size() > 1024) {  // a hostile list is cut short in the message
            names += "...";
            break;
        }
        names += discovery_detail::shown(name);
    }
    throw Error(Errc::InvalidConfiguration,
                "the authorization server does not accept " + discovery_detail::shown(method) +
                    " at its token endpoint: its metadata lists token_endpoint_auth_methods_supported [" + names + "]");
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
