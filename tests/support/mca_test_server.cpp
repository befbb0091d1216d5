#include "mca_test_server.hpp"

#include "loopback_util.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace mca::test {
namespace {

using namespace std::chrono_literals;
using namespace detail;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kAppsPath = "/imf-authserver/authorization/v1/apps/";
constexpr std::string_view kOAuthPath = "/oauth/v4/";  // App ID: /oauth/v4/{tenantId}/token
constexpr std::size_t kMaxRequestBytes = 64 * 1024;    // request line + headers + body
constexpr std::string_view kJwtHeader = R"({"alg":"RS256","typ":"JWT"})";
constexpr std::chrono::minutes kCertificateTimestampSkew{5};
constexpr std::string_view kCertificateOk = "ok";
// Realms: any OAuth 2.0 server, laid out as Keycloak lays out its realms.
constexpr std::string_view kRealmsPath = "/realms/";
constexpr std::string_view kRealmTokenSuffix = "/protocol/openid-connect/token";
constexpr std::string_view kRealmKeysSuffix = "/protocol/openid-connect/certs";
constexpr std::string_view kOpenIdConfigurationSuffix = "/.well-known/openid-configuration";
// RFC 8414 section 3: the well-known segment goes between the host and the issuer's path.
constexpr std::string_view kOAuthMetadataPath = "/.well-known/oauth-authorization-server/realms/";
constexpr std::string_view kJwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr std::chrono::minutes kMaxAssertionLifetime{10};
constexpr std::chrono::seconds kMaxIatAhead{60};
constexpr std::size_t kPssSaltLength = 32;  // RFC 7518 section 3.5: the salt is as long as the hash
constexpr std::size_t kEs256HalfLength = 32;
constexpr std::string_view kClientAuthOk = "ok";
constexpr std::string_view kResourcePath = "/resource";

// ---------------------------------------------------------------------------
// Resource ownership

template <auto FreeFunction>
struct Deleter {
    template <typename T>
    void operator()(T* pointer) const noexcept {
        FreeFunction(pointer);
    }
};
using SslContextPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyContextPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using DigestContextPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using EcdsaSignaturePtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;

struct OpenSslFree {  // OPENSSL_free is a macro, so Deleter<> cannot take it
    void operator()(void* pointer) const noexcept { OPENSSL_free(pointer); }
};

[[noreturn]] void throwOpenSslError(const std::string& what) {
    char detail[256] = "no OpenSSL error queued";
    if (const unsigned long code = ERR_get_error()) ERR_error_string_n(code, detail, sizeof detail);
    ERR_clear_error();
    throw std::runtime_error(what + ": " + detail);
}

// ---------------------------------------------------------------------------
// Text helpers

int hexDigitValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Paths decode only %XX; form fields also turn '+' into a space.
std::optional<std::string> percentDecode(std::string_view text, bool plusIsSpace) {
    std::string decoded;
    decoded.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%') {
            if (i + 2 >= text.size()) return std::nullopt;
            const int high = hexDigitValue(text[i + 1]);
            const int low = hexDigitValue(text[i + 2]);
            if (high < 0 || low < 0) return std::nullopt;
            decoded.push_back(static_cast<char>(high * 16 + low));
            i += 2;
        } else {
            decoded.push_back(plusIsSpace && text[i] == '+' ? ' ' : text[i]);
        }
    }
    return decoded;
}

using FormFields = std::vector<std::pair<std::string, std::string>>;

std::optional<FormFields> parseFormUrlEncoded(std::string_view body) {
    FormFields fields;
    while (!body.empty()) {
        const std::size_t ampersand = body.find('&');
        const std::string_view field = body.substr(0, ampersand);
        body = ampersand == std::string_view::npos ? std::string_view() : body.substr(ampersand + 1);
        if (field.empty()) continue;
        const std::size_t equals = field.find('=');
        auto name = percentDecode(field.substr(0, equals), true);
        auto value =
            percentDecode(equals == std::string_view::npos ? std::string_view() : field.substr(equals + 1), true);
        if (!name || !value) return std::nullopt;
        fields.emplace_back(std::move(*name), std::move(*value));
    }
    return fields;
}

// The values of the form fields called `name`, in order.
std::vector<std::string_view> formValues(const FormFields& form, std::string_view name) {
    std::vector<std::string_view> values;
    for (const auto& [fieldName, value] : form) {
        if (fieldName == name) values.push_back(value);
    }
    return values;
}

// Percent-encodes all but RFC 3986 unreserved characters, so the text stays one path segment.
std::string percentEncodeSegment(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string encoded;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            encoded.push_back(c);
        } else {
            encoded += {'%', kHex[byte >> 4], kHex[byte & 0x0F]};
        }
    }
    return encoded;
}

// The credentials of an Authorization header value; nullopt when it is not "<scheme> <credentials>".
std::optional<std::string_view> authorizationCredentials(std::string_view authorization, std::string_view scheme) {
    authorization = trimWhitespace(authorization);
    const std::size_t space = authorization.find(' ');
    if (space == std::string_view::npos || !equalsIgnoreCase(authorization.substr(0, space), scheme)) {
        return std::nullopt;
    }
    return trimWhitespace(authorization.substr(space + 1));
}

struct ClientCredentials {
    std::string clientId, secret;
};

// "Basic base64(clientId:secret)"; the Node SDK does not form-encode either part.
std::optional<ClientCredentials> parseBasicCredentials(std::string_view authorization) {
    const std::optional<std::string_view> encoded = authorizationCredentials(authorization, "Basic");
    const auto decoded = encoded ? base64Decode(*encoded, Base64::Standard) : std::nullopt;
    if (!decoded) return std::nullopt;
    const std::size_t colon = decoded->find(':');
    if (colon == std::string::npos) return std::nullopt;
    return ClientCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

// RFC 6749 section 2.3.1: each part is application/x-www-form-urlencoded before the
// base64, so a ':' inside the client id arrives as %3A and the first ':' is the separator.
std::optional<ClientCredentials> parseOAuthBasicCredentials(std::string_view authorization) {
    std::optional<ClientCredentials> raw = parseBasicCredentials(authorization);
    if (!raw) return std::nullopt;
    auto clientId = percentDecode(raw->clientId, true);
    auto secret = percentDecode(raw->secret, true);
    if (!clientId || !secret) return std::nullopt;
    return ClientCredentials{std::move(*clientId), std::move(*secret)};
}

// RFC 7231 IMF-fixdate, spelled out by hand because strftime follows the locale.
std::string httpDate(std::chrono::system_clock::time_point when) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[96];
    std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[utc.tm_wday], utc.tm_mday,
                  kMonths[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min, utc.tm_sec);
    return text;
}

std::string_view reasonPhrase(int status) {
    switch (status) {
        case 100:
            return "Continue";
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 204:
            return "No Content";
        case 301:
            return "Moved Permanently";
        case 302:
            return "Found";
        case 303:
            return "See Other";
        case 307:
            return "Temporary Redirect";
        case 308:
            return "Permanent Redirect";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 429:
            return "Too Many Requests";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        default:
            return "Unknown";
    }
}

// ---------------------------------------------------------------------------
// HTTP messages

struct Response {
    int status = 200;
    Headers headers;  // besides Date, Content-Length and Connection
    std::string body;
};

std::string serializeHead(const Response& response, bool keepAlive) {
    std::string head = "HTTP/1.1 " + std::to_string(response.status) + " ";
    head += reasonPhrase(response.status);
    head += "\r\nDate: " + httpDate(std::chrono::system_clock::now());
    head += "\r\nContent-Length: " + std::to_string(response.body.size());
    head += keepAlive ? "\r\nConnection: keep-alive" : "\r\nConnection: close";
    for (const auto& [name, value] : response.headers) head += "\r\n" + name + ": " + value;
    head += "\r\n\r\n";
    return head;
}

Response jsonResponse(int status, const nlohmann::json& body) {
    // `replace` keeps stray non-UTF-8 bytes (e.g. from a decoded path) from throwing.
    return {status,
            {{"Content-Type", "application/json"}},
            body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

Response errorResponse(int status, std::string_view error, std::string_view description) {
    return jsonResponse(status, {{"error", error}, {"error_description", description}});
}

enum class Endpoint {
    Token,                // MCA: /imf-authserver/authorization/v1/apps/{appId}/token
    PublicKey,            // MCA: /imf-authserver/authorization/v1/apps/{appId}/publickey
    OAuthToken,           // App ID (RFC 6749 section 4.4): /oauth/v4/{tenantId}/token
    RealmToken,           // /realms/{realm}/protocol/openid-connect/token
    RealmKeys,            // /realms/{realm}/protocol/openid-connect/certs
    OAuthMetadata,        // /.well-known/oauth-authorization-server/realms/{realm}
    OpenIdConfiguration,  // /realms/{realm}/.well-known/openid-configuration
    Resource,             // /resource: the protected resource
};

struct Route {
    Endpoint endpoint;
    std::string appId;  // percent-decoded; the tenantId for OAuthToken, the realm for the realm endpoints
};

// Realm names stay one literal path segment: no decoding, and no dot segment a client would collapse.
bool isRealmName(std::string_view name) {
    if (name.empty() || name == "." || name == "..") return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
    });
}

const std::string& checkedRealm(const std::string& realm) {
    if (!isRealmName(realm)) throw std::invalid_argument("McaTestServer: bad realm name '" + realm + "'");
    return realm;
}

std::optional<Route> realmRouteOf(std::string_view path) {
    if (path.substr(0, kOAuthMetadataPath.size()) == kOAuthMetadataPath) {
        path.remove_prefix(kOAuthMetadataPath.size());
        if (!isRealmName(path)) return std::nullopt;
        return Route{Endpoint::OAuthMetadata, std::string(path)};
    }
    path.remove_prefix(kRealmsPath.size());
    const std::size_t slash = path.find('/');
    if (slash == std::string_view::npos || !isRealmName(path.substr(0, slash))) return std::nullopt;
    const std::string_view suffix = path.substr(slash);
    const std::string realm(path.substr(0, slash));
    if (suffix == kRealmTokenSuffix) return Route{Endpoint::RealmToken, realm};
    if (suffix == kRealmKeysSuffix) return Route{Endpoint::RealmKeys, realm};
    if (suffix == kOpenIdConfigurationSuffix) return Route{Endpoint::OpenIdConfiguration, realm};
    return std::nullopt;
}

std::optional<Route> routeOf(std::string_view target) {
    std::string_view path = target.substr(0, target.find('?'));
    if (path == kResourcePath) return Route{Endpoint::Resource, {}};
    if (path.substr(0, kRealmsPath.size()) == kRealmsPath ||
        path.substr(0, kOAuthMetadataPath.size()) == kOAuthMetadataPath) {
        return realmRouteOf(path);
    }
    const bool mca = path.substr(0, kAppsPath.size()) == kAppsPath;
    if (!mca && path.substr(0, kOAuthPath.size()) != kOAuthPath) return std::nullopt;
    path.remove_prefix(mca ? kAppsPath.size() : kOAuthPath.size());
    const std::size_t slash = path.find('/');
    if (slash == 0 || slash == std::string_view::npos) return std::nullopt;
    const std::string_view endpointName = path.substr(slash + 1);
    Endpoint endpoint;
    if (endpointName == "token") {
        endpoint = mca ? Endpoint::Token : Endpoint::OAuthToken;
    } else if (mca && endpointName == "publickey") {
        endpoint = Endpoint::PublicKey;
    } else {
        return std::nullopt;
    }
    auto appId = percentDecode(path.substr(0, slash), false);
    if (!appId) return std::nullopt;
    return Route{endpoint, std::move(*appId)};
}

// One accepted connection's byte stream, plain or TLS. Sockets stay blocking:
// waits go through StopSignal, and on stop the server shutdown()s every socket
// so calls already inside recv/send/SSL_* return too.
class Stream {
  public:
    Stream(int fd, SSL* ssl, const StopSignal& stop) : fd_(fd), ssl_(ssl), stop_(stop) {}

    // Bytes read; 0 when the peer closed, on error, or when the server is stopping.
    std::size_t read(char* buffer, std::size_t capacity) {
        const bool decryptedBytesWaiting = ssl_ != nullptr && SSL_pending(ssl_) > 0;
        if (!decryptedBytesWaiting && !stop_.waitReadable(fd_)) return 0;
        if (ssl_ != nullptr) {
            const int count = SSL_read(ssl_, buffer, static_cast<int>(std::min<std::size_t>(capacity, INT_MAX)));
            return count > 0 ? static_cast<std::size_t>(count) : 0;
        }
        while (true) {
            const ssize_t count = ::recv(fd_, buffer, capacity, 0);
            if (count < 0 && errno == EINTR) continue;
            return count > 0 ? static_cast<std::size_t>(count) : 0;
        }
    }

    bool write(std::string_view bytes) {
        while (!bytes.empty()) {
            const std::size_t chunk = std::min<std::size_t>(bytes.size(), INT_MAX);
            ssize_t written;
            if (ssl_ != nullptr) {
                written = SSL_write(ssl_, bytes.data(), static_cast<int>(chunk));
            } else {
                written = ::send(fd_, bytes.data(), chunk, MSG_NOSIGNAL);
                if (written < 0 && errno == EINTR) continue;
            }
            if (written <= 0) return false;
            bytes.remove_prefix(static_cast<std::size_t>(written));
        }
        return true;
    }

    // Discards input until the peer closes or the server stops.
    void drainUntilClosed() {
        char buffer[4096];
        while (read(buffer, sizeof buffer) > 0) {
        }
    }

  private:
    int fd_;
    SSL* ssl_;
    const StopSignal& stop_;
};

// ---------------------------------------------------------------------------
// Keys, TLS and JWS

struct SigningKey {
    PkeyPtr key;
    std::string publicKeyPem;
    std::string jwkJson;
};

PkeyPtr generateRsaKey() {
    PkeyContextPtr context(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
    EVP_PKEY* key = nullptr;
    if (!context || EVP_PKEY_keygen_init(context.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(context.get(), 2048) != 1 || EVP_PKEY_generate(context.get(), &key) != 1) {
        throwOpenSslError("RSA key generation failed");
    }
    return PkeyPtr(key);
}

std::string publicKeyToPem(EVP_PKEY* key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) throwOpenSslError("PEM_write_bio_PUBKEY failed");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

std::string rsaParameterBase64Url(EVP_PKEY* key, const char* parameterName) {
    BIGNUM* raw = nullptr;
    if (EVP_PKEY_get_bn_param(key, parameterName, &raw) != 1) throwOpenSslError("EVP_PKEY_get_bn_param failed");
    const BignumPtr number(raw);
    std::string bytes(static_cast<std::size_t>(BN_num_bytes(number.get())), '\0');
    BN_bn2bin(number.get(), reinterpret_cast<unsigned char*>(bytes.data()));
    return base64UrlEncode(bytes);
}

const SigningKey& processSigningKey() {
    static const SigningKey signingKey = [] {
        SigningKey generated{generateRsaKey(), {}, {}};
        generated.publicKeyPem = publicKeyToPem(generated.key.get());
        generated.jwkJson = nlohmann::json{{"kty", "RSA"},
                                           {"n", rsaParameterBase64Url(generated.key.get(), OSSL_PKEY_PARAM_RSA_N)},
                                           {"e", rsaParameterBase64Url(generated.key.get(), OSSL_PKEY_PARAM_RSA_E)}}
                                .dump();
        return generated;
    }();
    return signingKey;
}

SslContextPtr makeTlsContext(const std::string& certFile, const std::string& keyFile) {
    if (certFile.empty() && keyFile.empty()) return nullptr;
    if (certFile.empty() || keyFile.empty()) {
        throw std::invalid_argument("McaTestServer: tlsCertFile and tlsKeyFile must be set together");
    }
    SslContextPtr context(SSL_CTX_new(TLS_server_method()));
    if (!context) throwOpenSslError("SSL_CTX_new failed");
    if (SSL_CTX_use_certificate_chain_file(context.get(), certFile.c_str()) != 1) {
        throwOpenSslError("cannot load TLS certificate " + certFile);
    }
    if (SSL_CTX_use_PrivateKey_file(context.get(), keyFile.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(context.get()) != 1) {
        throwOpenSslError("cannot load TLS key " + keyFile);
    }
    // tls_client_auth: ask every client for a certificate but require none and accept any, so
    // the other endpoints work without one; the realm token endpoint compares it with the
    // registered one.
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
    // With SSL_VERIFY_PEER, OpenSSL fails every session resumption unless a session id context is set.
    static constexpr unsigned char kSessionContext[] = "mca-test-server";
    if (SSL_CTX_set_session_id_context(context.get(), kSessionContext, sizeof kSessionContext - 1) != 1) {
        throwOpenSslError("SSL_CTX_set_session_id_context failed");
    }
    return context;
}

struct CompactJws {
    std::string_view header, payload, signature, signingInput;
};

std::optional<CompactJws> splitCompactJws(std::string_view jws) {
    const std::size_t firstDot = jws.find('.');
    if (firstDot == std::string_view::npos) return std::nullopt;
    const std::size_t secondDot = jws.find('.', firstDot + 1);
    if (secondDot == std::string_view::npos || jws.find('.', secondDot + 1) != std::string_view::npos) {
        return std::nullopt;
    }
    return CompactJws{jws.substr(0, firstDot), jws.substr(firstDot + 1, secondDot - firstDot - 1),
                      jws.substr(secondDot + 1), jws.substr(0, secondDot)};
}

// SHA-256 digest check; with an RSA key this is RS256 (PKCS#1 v1.5 padding, OpenSSL's default).
bool verifySha256Signature(EVP_PKEY* key, std::string_view signingInput, std::string_view signature) {
    const DigestContextPtr context(EVP_MD_CTX_new());
    return context && EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
           EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(signingInput.data()), signingInput.size()) == 1;
}

// Decodes a JWS header or payload part into JSON; a discarded value when malformed.
nlohmann::json decodeJwsJson(std::string_view part) {
    const auto text = base64Decode(part, Base64::Url);
    return text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json(nlohmann::json::value_t::discarded);
}

bool verifyRs256Signature(const CompactJws& jws, const std::string& publicKeyPem) {
    const auto signature = base64Decode(jws.signature, Base64::Url);
    const nlohmann::json header = decodeJwsJson(jws.header);
    const auto alg = header.find("alg");  // find() on a non-object is simply end()
    if (!signature || !header.is_object() || alg == header.end() || *alg != "RS256") return false;

    const BioPtr bio(BIO_new_mem_buf(publicKeyPem.data(), static_cast<int>(publicKeyPem.size())));
    const PkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    return key && verifySha256Signature(key.get(), jws.signingInput, *signature);
}

std::string certificateDer(X509* certificate) {
    unsigned char* der = nullptr;
    const int length = i2d_X509(certificate, &der);
    const std::unique_ptr<unsigned char, OpenSslFree> owner(der);
    if (length < 0) throwOpenSslError("i2d_X509 failed");
    return std::string(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
}

// The DER bytes of the first certificate in `pem`.
std::string certificateDerFromPem(const std::string& pem) {
    const BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    const X509Ptr certificate(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    ERR_clear_error();
    if (!certificate) throw std::invalid_argument("McaTestServer: no PEM certificate");
    return certificateDer(certificate.get());
}

// The certificate bytes of a JWS header's "x5c": a string, as the Node SDK sends it, or
// (RFC 7515 section 4.1.6) an array whose first element signed. The Node SDK strips the
// "==" off the PEM body, so missing padding is tolerated.
std::optional<std::string> x5cCertificateBytes(const nlohmann::json& header) {
    const auto found = header.find("x5c");
    if (found == header.end()) return std::nullopt;
    const nlohmann::json& x5c = found->is_array() && !found->empty() ? found->front() : *found;
    if (!x5c.is_string()) return std::nullopt;
    std::string text = x5c.get<std::string>();
    if (text.size() % 4 != 0) text.append(4 - text.size() % 4, '=');
    return base64Decode(text, Base64::Standard);
}

// The first subject CN as UTF-8.
std::optional<std::string> commonNameOf(const X509* certificate) {
    const X509_NAME* subject = X509_get_subject_name(certificate);
    const int index = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
    if (index < 0) return std::nullopt;
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
    const std::unique_ptr<unsigned char, OpenSslFree> owner(utf8);
    if (length < 0) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
}

// ---------------------------------------------------------------------------
// RS256, PS256 and ES256 (RFC 7518 section 3), written apart from the library's signer so that
// tests can check it.

// Encrypted keys are refused rather than prompting on the terminal (OpenSSL's default callback).
int noPassword(char*, int, int, void*) { return 0; }

BioPtr memoryBio(const std::string& text) {
    return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// The key of a public key, private key or certificate PEM; null when there is none.
PkeyPtr keyFromPem(const std::string& pem) {
    BioPtr bio = memoryBio(pem);
    PkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, noPassword, nullptr) : nullptr);
    if (!key && (bio = memoryBio(pem))) key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassword, nullptr));
    if (!key && (bio = memoryBio(pem))) {
        const X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, noPassword, nullptr));
        if (certificate) key.reset(X509_get_pubkey(certificate.get()));
    }
    ERR_clear_error();
    return key;
}

enum class JwsAlg { RS256, PS256, ES256 };

std::optional<JwsAlg> jwsAlgOf(const nlohmann::json& alg) {
    if (alg == "RS256") return JwsAlg::RS256;
    if (alg == "PS256") return JwsAlg::PS256;
    if (alg == "ES256") return JwsAlg::ES256;
    return std::nullopt;
}

bool algFitsKey(JwsAlg alg, EVP_PKEY* key) {
    if (alg != JwsAlg::ES256) return EVP_PKEY_is_a(key, "RSA") == 1;
    char group[64] = {};
    std::size_t length = 0;
    const bool p256 =
        EVP_PKEY_is_a(key, "EC") == 1 &&
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &length) == 1 &&
        (std::string_view(group) == "prime256v1" || std::string_view(group) == "P-256");
    ERR_clear_error();
    return p256;
}

// RFC 7518 section 3.5 fixes the PSS parameters; RS256 and ES256 keep OpenSSL's defaults.
bool configurePss(EVP_PKEY_CTX* context, JwsAlg alg) {
    return alg != JwsAlg::PS256 || (EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PSS_PADDING) == 1 &&
                                    EVP_PKEY_CTX_set_rsa_pss_saltlen(context, static_cast<int>(kPssSaltLength)) == 1 &&
                                    EVP_PKEY_CTX_set_rsa_mgf1_md(context, EVP_sha256()) == 1);
}

// A JWS carries an ECDSA signature as r||s, fixed-size big-endian halves; EVP speaks DER.
std::optional<std::string> es256ToDer(std::string_view signature) {
    if (signature.size() != 2 * kEs256HalfLength) return std::nullopt;
    const auto* bytes = reinterpret_cast<const unsigned char*>(signature.data());
    EcdsaSignaturePtr ecdsa(ECDSA_SIG_new());
    BignumPtr r(BN_bin2bn(bytes, kEs256HalfLength, nullptr));
    BignumPtr s(BN_bin2bn(bytes + kEs256HalfLength, kEs256HalfLength, nullptr));
    if (!ecdsa || !r || !s || ECDSA_SIG_set0(ecdsa.get(), r.get(), s.get()) != 1) return std::nullopt;
    static_cast<void>(r.release());  // owned by `ecdsa` now
    static_cast<void>(s.release());
    unsigned char* der = nullptr;
    const int length = i2d_ECDSA_SIG(ecdsa.get(), &der);
    const std::unique_ptr<unsigned char, OpenSslFree> owner(der);
    if (length <= 0) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length));
}

std::string derToEs256(std::string_view der) {
    const auto* cursor = reinterpret_cast<const unsigned char*>(der.data());
    const EcdsaSignaturePtr ecdsa(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
    if (!ecdsa) throwOpenSslError("d2i_ECDSA_SIG failed");
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(ecdsa.get(), &r, &s);
    std::string signature(2 * kEs256HalfLength, '\0');
    auto* out = reinterpret_cast<unsigned char*>(signature.data());
    if (BN_bn2binpad(r, out, kEs256HalfLength) != static_cast<int>(kEs256HalfLength) ||
        BN_bn2binpad(s, out + kEs256HalfLength, kEs256HalfLength) != static_cast<int>(kEs256HalfLength)) {
        throwOpenSslError("ES256 signature halves do not fit 32 bytes");
    }
    return signature;
}

bool verifyWithAlg(EVP_PKEY* key, JwsAlg alg, std::string_view signingInput, std::string_view signature) {
    const DigestContextPtr context(EVP_MD_CTX_new());
    EVP_PKEY_CTX* keyContext = nullptr;  // owned by `context`
    return context && EVP_DigestVerifyInit(context.get(), &keyContext, EVP_sha256(), nullptr, key) == 1 &&
           configurePss(keyContext, alg) &&
           EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(signingInput.data()), signingInput.size()) == 1;
}

std::string signWithAlg(EVP_PKEY* key, JwsAlg alg, std::string_view input) {
    const DigestContextPtr context(EVP_MD_CTX_new());
    EVP_PKEY_CTX* keyContext = nullptr;  // owned by `context`
    std::size_t length = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    if (!context || EVP_DigestSignInit(context.get(), &keyContext, EVP_sha256(), nullptr, key) != 1 ||
        !configurePss(keyContext, alg) || EVP_DigestSign(context.get(), nullptr, &length, data, input.size()) != 1) {
        throwOpenSslError("EVP_DigestSign failed");
    }
    std::string signature(length, '\0');
    if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data,
                       input.size()) != 1) {
        throwOpenSslError("EVP_DigestSign failed");
    }
    signature.resize(length);
    return alg == JwsAlg::ES256 ? derToEs256(signature) : signature;
}

// Why `text` does not verify with `key`; empty when it does.
std::string jwsProblem(std::string_view text, EVP_PKEY* key) {
    const std::optional<CompactJws> jws = splitCompactJws(text);
    if (!jws) return "malformed JWS";
    const nlohmann::json header = decodeJwsJson(jws->header);
    std::optional<std::string> signature = base64Decode(jws->signature, Base64::Url);
    if (!header.is_object() || !signature) return "malformed JWS";
    const auto algField = header.find("alg");
    const std::optional<JwsAlg> alg = algField == header.end() ? std::nullopt : jwsAlgOf(*algField);
    if (!alg) return "alg is not RS256, PS256 or ES256";
    if (!algFitsKey(*alg, key)) return "alg does not fit the key";
    if (*alg == JwsAlg::ES256) {
        signature = es256ToDer(*signature);  // a DER signature, as OpenSSL makes it, is refused here
        if (!signature) return "signature does not verify";
    }
    const bool valid = verifyWithAlg(key, *alg, jws->signingInput, *signature);
    ERR_clear_error();
    return valid ? std::string() : "signature does not verify";
}

std::string sha256(std::string_view bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
        throwOpenSslError("EVP_Digest failed");
    }
    return std::string(reinterpret_cast<const char*>(digest), length);
}

Reply serviceUnavailableReply() {
    Reply reply;
    reply.action = Action::Status;
    reply.status = 503;
    reply.headers = {{"Content-Type", "application/json"}};
    reply.body = R"({"error":"temporarily_unavailable","error_description":"injected by setFailEvery"})";
    return reply;
}

}  // namespace

// ---------------------------------------------------------------------------

std::string RecordedRequest::header(std::string_view name) const {
    for (const auto& [headerName, value] : headers) {
        if (equalsIgnoreCase(headerName, name)) return value;
    }
    return {};
}

class McaTestServer::Impl {
  public:
    explicit Impl(ServerOptions options)
        : signingKey_(processSigningKey()),
          tlsContext_(makeTlsContext(options.tlsCertFile, options.tlsKeyFile)),
          listenFd_(listenOnLoopback(options.port)),
          port_(boundPort(listenFd_.get())),
          expiresIn_(options.expiresIn),
          tokenPadding_(options.tokenPadding) {
        acceptThread_ = std::thread([this] { acceptLoop(); });
    }

    ~Impl() {
        stop_.raise();
        acceptThread_.join();
        listenFd_.reset();
        // Threads blocked inside recv/send/SSL_* do not watch the stop signal.
        for (const auto& connection : connections_) {
            const std::lock_guard lock(connection->fdMutex);
            if (connection->fd) ::shutdown(connection->fd.get(), SHUT_RDWR);
        }
        for (const auto& connection : connections_) connection->thread.join();
    }

    std::uint16_t port() const { return port_; }
    std::string baseUrl() const { return origin() + "/imf-authserver"; }
    std::string oauthServerUrl(const std::string& tenantId) const {
        return origin() + std::string(kOAuthPath) + percentEncodeSegment(tenantId);
    }

    void addClient(std::string appId, std::string clientId, std::string secret) {
        const std::lock_guard lock(stateMutex_);
        secrets_[{std::move(appId), std::move(clientId)}] = std::move(secret);
    }
    void addCertificateClient(std::string appId, const std::string& certificatePem) {
        std::string der = certificateDerFromPem(certificatePem);
        const std::lock_guard lock(stateMutex_);
        certificates_.emplace(std::move(appId), std::move(der));
    }
    void addOAuthClient(std::string tenantId, std::string clientId, std::string secret) {
        const std::lock_guard lock(stateMutex_);
        oauthSecrets_[{std::move(tenantId), std::move(clientId)}] = std::move(secret);
    }
    void setExpiresIn(long long seconds) {
        const std::lock_guard lock(stateMutex_);
        expiresIn_ = seconds;
    }
    void setTokenPadding(std::size_t bytes) {
        const std::lock_guard lock(stateMutex_);
        tokenPadding_ = bytes;
    }
    void setDelay(std::chrono::milliseconds delay) {
        const std::lock_guard lock(stateMutex_);
        delay_ = delay;
    }
    void pushReply(Reply reply) {
        const std::lock_guard lock(stateMutex_);
        scriptedReplies_.push_back(std::move(reply));
    }
    void setDefaultReply(std::optional<Reply> reply) {
        const std::lock_guard lock(stateMutex_);
        defaultReply_ = std::move(reply);
    }
    void setFailEvery(unsigned n) {
        const std::lock_guard lock(stateMutex_);
        failEvery_ = n;
    }
    std::size_t tokenRequests() const {
        const std::lock_guard lock(stateMutex_);
        return tokenRequests_;
    }
    std::size_t connectionsAccepted() const { return connectionsAccepted_; }
    std::size_t openConnections() const { return openConnections_; }
    std::size_t peakOpenConnections() const { return peakOpenConnections_; }
    std::vector<RecordedRequest> requests() const {
        const std::lock_guard lock(stateMutex_);
        return requests_;
    }
    void clearRequests() {
        const std::lock_guard lock(stateMutex_);
        requests_.clear();
    }
    std::string publicKeyPem() const { return signingKey_.publicKeyPem; }
    std::string lastIssuedToken() const {
        const std::lock_guard lock(stateMutex_);
        return lastIssuedToken_;
    }
    std::string lastCertificateCheck() const {
        const std::lock_guard lock(stateMutex_);
        return lastCertificateCheck_;
    }

    void addOAuth2Client(const std::string& realm, OAuth2Client client) {
        checkedRealm(realm);
        if (client.clientId.empty()) throw std::invalid_argument("McaTestServer: empty clientId");
        RealmClient entry{std::move(client), {}, {}};
        if (entry.client.method == ClientAuth::PrivateKeyJwt && !keyFromPem(entry.client.publicKeyPem)) {
            throw std::invalid_argument("McaTestServer: private_key_jwt needs a public key or certificate PEM");
        }
        if (entry.client.method == ClientAuth::TlsClientAuth) {
            entry.certificateDer = certificateDerFromPem(entry.client.certificatePem);
        }
        const std::lock_guard lock(stateMutex_);
        std::string clientId = entry.client.clientId;
        realms_[realm].clients.insert_or_assign(std::move(clientId), std::move(entry));
    }
    std::string issuer(const std::string& realm) const {
        return origin() + std::string(kRealmsPath) + checkedRealm(realm);
    }
    std::string tokenEndpoint(const std::string& realm) const { return issuer(realm) + std::string(kRealmTokenSuffix); }
    void setDiscoveryReply(const std::string& realm, DiscoveryDocument which, std::optional<Reply> reply) {
        checkedRealm(realm);
        const std::lock_guard lock(stateMutex_);
        realms_[realm].discoveryReplies[static_cast<std::size_t>(which)] = std::move(reply);
    }
    void setSupportedAuthMethods(const std::string& realm, std::vector<std::string> methods) {
        checkedRealm(realm);
        const std::lock_guard lock(stateMutex_);
        realms_[realm].authMethods = std::move(methods);
    }
    std::size_t discoveryRequests() const {
        const std::lock_guard lock(stateMutex_);
        return discoveryRequests_;
    }
    std::string lastClientAuthCheck() const {
        const std::lock_guard lock(stateMutex_);
        return lastClientAuthCheck_;
    }
    nlohmann::json lastClientAssertionHeader() const {
        const std::lock_guard lock(stateMutex_);
        return lastAssertionHeader_;
    }
    nlohmann::json lastClientAssertionClaims() const {
        const std::lock_guard lock(stateMutex_);
        return lastAssertionClaims_;
    }
    FormFields lastTokenForm() const {
        const std::lock_guard lock(stateMutex_);
        return lastTokenForm_;
    }
    std::string resourceUrl() const { return origin() + std::string(kResourcePath); }
    void revokeToken(const std::string& header) {
        std::string_view token = header;
        if (const std::size_t space = token.find(' ');
            space != std::string_view::npos && equalsIgnoreCase(token.substr(0, space), "Bearer")) {
            token.remove_prefix(space + 1);
        }
        const std::lock_guard lock(stateMutex_);
        revokedTokens_.emplace(token);
    }
    void revokeNextTokens(std::size_t count) {
        const std::lock_guard lock(stateMutex_);
        tokensToRevoke_ = count;
    }
    std::size_t resourceRequests() const {
        const std::lock_guard lock(stateMutex_);
        return resourceRequests_;
    }

  private:
    std::string origin() const {
        return std::string(tlsContext_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
    }

    struct Connection {
        Connection(std::uint64_t connectionId, UniqueFd socket) : id(connectionId), fd(std::move(socket)) {}
        const std::uint64_t id;
        std::mutex fdMutex;  // the connection thread closes `fd` while the destructor may shutdown() it
        UniqueFd fd;
        std::thread thread;
        std::atomic<bool> finished{false};
    };

    struct IncomingRequest {
        RecordedRequest recorded;
        bool keepAlive = true;
        std::optional<std::string> clientCertificateDer;  // the TLS peer's leaf certificate, when it sent one
    };

    struct RealmClient {
        OAuth2Client client;
        std::string certificateDer;  // TlsClientAuth
        std::set<std::string> jtis;  // of the assertions accepted so far
    };

    struct Realm {
        std::map<std::string, RealmClient> clients;  // by client id
        std::vector<std::string> authMethods = {"client_secret_basic", "client_secret_post", "private_key_jwt",
                                                "tls_client_auth"};
        std::array<std::optional<Reply>, 2> discoveryReplies;  // by DiscoveryDocument
    };

    // The outcome of a realm token request's client authentication.
    struct ClientAuthOutcome {
        int status = 401;
        std::string check;  // kClientAuthOk, or the error_description
        std::string clientId;
        std::optional<std::string> certificateThumbprint;  // tls_client_auth: x5t#S256
    };

    enum class ConnectionFate {
        KeepOpen,  // wait for the next request
        Close,     // orderly close (TLS close_notify)
        Drop,      // close abruptly
    };

    void acceptLoop() {
        // OpenSSL writes to sockets without MSG_NOSIGNAL: a client hanging up
        // must not kill the test process. Connection threads inherit the mask.
        sigset_t sigpipe;
        sigemptyset(&sigpipe);
        sigaddset(&sigpipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);

        while (stop_.waitReadable(listenFd_.get())) {
            UniqueFd client(::accept4(listenFd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!client) {
                // Out of descriptors or memory: back off rather than spin.
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) stop_.sleepFor(10ms);
                continue;
            }
            const int on = 1;
            ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // Trickle sends single bytes
            reapFinishedConnections();
            auto& connection =
                *connections_.emplace_back(std::make_unique<Connection>(++connectionsAccepted_, std::move(client)));
            const std::size_t open = ++openConnections_;
            for (std::size_t peak = peakOpenConnections_; open > peak;) {
                if (peakOpenConnections_.compare_exchange_weak(peak, open)) break;
            }
            try {
                connection.thread = std::thread([this, &connection] { serveConnection(connection); });
            } catch (const std::system_error&) {
                // Out of threads: refuse this connection rather than take the test process down.
                connections_.pop_back();
                --openConnections_;
            }
        }
    }

    void reapFinishedConnections() {
        for (auto it = connections_.begin(); it != connections_.end();) {
            if ((*it)->finished) {
                (*it)->thread.join();
                it = connections_.erase(it);
            } else {
                ++it;
            }
        }
    }

    void serveConnection(Connection& connection) {
        try {
            serveTransport(connection);
        } catch (const std::exception& error) {
            // Escaping the thread would terminate the whole test binary.
            std::fprintf(stderr, "mca-test-server: connection %llu: %s\n",
                         static_cast<unsigned long long>(connection.id), error.what());
        }
        {
            const std::lock_guard lock(connection.fdMutex);
            connection.fd.reset();
        }
        --openConnections_;
        connection.finished = true;
    }

    void serveTransport(const Connection& connection) {
        SslPtr ssl;
        if (tlsContext_) {
            ssl.reset(SSL_new(tlsContext_.get()));
            if (!ssl || SSL_set_fd(ssl.get(), connection.fd.get()) != 1 || SSL_accept(ssl.get()) != 1) {
                ERR_clear_error();  // e.g. the client rejected our certificate: close quietly
                return;
            }
        }
        std::optional<std::string> clientCertificateDer;
        if (const X509* peer = ssl ? SSL_get0_peer_certificate(ssl.get()) : nullptr) {
            clientCertificateDer = certificateDer(const_cast<X509*>(peer));
        }
        Stream stream(connection.fd.get(), ssl.get(), stop_);
        if (serveHttp(stream, connection.id, clientCertificateDer) == ConnectionFate::Close && ssl) {
            SSL_shutdown(ssl.get());
        }
        ERR_clear_error();
    }

    ConnectionFate serveHttp(Stream& stream, std::uint64_t connectionId,
                             const std::optional<std::string>& clientCertificateDer) {
        std::string unread;  // bytes received past the previous request (pipelining)
        while (true) {
            std::optional<IncomingRequest> request = readRequest(stream, unread);
            if (!request) return ConnectionFate::Close;
            request->recorded.connectionId = connectionId;
            request->clientCertificateDer = clientCertificateDer;
            {
                const std::lock_guard lock(stateMutex_);
                requests_.push_back(request->recorded);
            }
            const ConnectionFate fate = respond(stream, *request);
            if (fate != ConnectionFate::KeepOpen) return fate;
        }
    }

    // nullopt when the connection is finished: the peer closed, the server is
    // stopping, or the request was unacceptable (its 4xx reply already sent).
    std::optional<IncomingRequest> readRequest(Stream& stream, std::string& unread) {
        char buffer[16 * 1024];
        const auto receiveMore = [&] {
            const std::size_t count = stream.read(buffer, sizeof buffer);
            unread.append(buffer, count);
            return count > 0;
        };
        const auto reject = [&](int status, std::string_view error, std::string_view description) {
            sendResponse(stream, errorResponse(status, error, description), false);
            return std::nullopt;
        };

        std::size_t headEnd;
        while ((headEnd = unread.find("\r\n\r\n")) == std::string::npos) {
            if (unread.size() >= kMaxRequestBytes) return reject(431, "invalid_request", "request headers too large");
            if (!receiveMore()) return std::nullopt;
        }
        const std::size_t headSize = headEnd + 4;
        if (headSize > kMaxRequestBytes) return reject(431, "invalid_request", "request headers too large");
        std::optional<RecordedRequest> request = parseRequestHead(std::string_view(unread).substr(0, headEnd));
        if (!request) return reject(400, "invalid_request", "malformed request head");
        if (!request->header("Transfer-Encoding").empty()) {
            return reject(411, "invalid_request", "only Content-Length request bodies are supported");
        }

        std::size_t bodySize = 0;
        const std::string contentLength = request->header("Content-Length");
        if (!contentLength.empty()) {
            const auto [end, error] =
                std::from_chars(contentLength.data(), contentLength.data() + contentLength.size(), bodySize);
            if (error == std::errc::result_out_of_range) {
                bodySize = SIZE_MAX;
            } else if (error != std::errc() || end != contentLength.data() + contentLength.size()) {
                return reject(400, "invalid_request", "malformed Content-Length");
            }
        }
        if (bodySize > kMaxRequestBytes - headSize) return reject(413, "invalid_request", "request body too large");

        const bool http11 = request->version == "HTTP/1.1";
        if (http11 && unread.size() < headSize + bodySize &&
            equalsIgnoreCase(request->header("Expect"), "100-continue")) {
            if (!stream.write("HTTP/1.1 100 Continue\r\n\r\n")) return std::nullopt;
        }
        while (unread.size() < headSize + bodySize) {
            if (!receiveMore()) return std::nullopt;
        }
        request->body = unread.substr(headSize, bodySize);
        unread.erase(0, headSize + bodySize);

        const std::string connection = request->header("Connection");
        const bool keepAlive = http11 ? !listsToken(connection, "close") : listsToken(connection, "keep-alive");
        return IncomingRequest{std::move(*request), keepAlive, std::nullopt};  // the certificate is the caller's
    }

    static ConnectionFate sendResponse(Stream& stream, const Response& response, bool keepAlive) {
        if (!stream.write(serializeHead(response, keepAlive) + response.body)) return ConnectionFate::Drop;
        return keepAlive ? ConnectionFate::KeepOpen : ConnectionFate::Close;
    }

    ConnectionFate respond(Stream& stream, const IncomingRequest& incoming) {
        const RecordedRequest& request = incoming.recorded;
        const std::optional<Route> route = routeOf(request.target);
        if (!route)
            return sendResponse(stream, errorResponse(404, "not_found", "no such endpoint"), incoming.keepAlive);

        const bool get = route->endpoint == Endpoint::PublicKey || route->endpoint == Endpoint::RealmKeys ||
                         route->endpoint == Endpoint::OAuthMetadata ||
                         route->endpoint == Endpoint::OpenIdConfiguration || route->endpoint == Endpoint::Resource;
        const char* allowedMethod = get ? "GET" : "POST";
        if (request.method != allowedMethod) {
            Response response = errorResponse(405, "method_not_allowed", std::string(allowedMethod) + " only");
            response.headers.emplace_back("Allow", allowedMethod);
            return sendResponse(stream, response, incoming.keepAlive);
        }
        if (route->endpoint == Endpoint::PublicKey) {
            return sendResponse(stream, Response{200, {{"Content-Type", "application/json"}}, signingKey_.jwkJson},
                                incoming.keepAlive);
        }
        if (route->endpoint == Endpoint::RealmKeys) {
            nlohmann::json key = nlohmann::json::parse(signingKey_.jwkJson);
            key["use"] = "sig";
            key["alg"] = "RS256";
            return sendResponse(stream, jsonResponse(200, {{"keys", nlohmann::json::array({key})}}),
                                incoming.keepAlive);
        }
        if (route->endpoint == Endpoint::OAuthMetadata || route->endpoint == Endpoint::OpenIdConfiguration) {
            return answerDiscovery(stream, incoming, *route);
        }
        if (route->endpoint == Endpoint::Resource) return answerResource(stream, incoming);
        return answerTokenRequest(stream, incoming, *route);
    }

    ConnectionFate answerResource(Stream& stream, const IncomingRequest& incoming) {
        {
            const std::lock_guard lock(stateMutex_);
            ++resourceRequests_;
        }
        nlohmann::json claims;
        const std::string problem = resourceProblem(incoming.recorded.header("Authorization"), claims);
        if (!problem.empty()) {
            Response response = errorResponse(401, "invalid_token", problem);
            response.headers.emplace_back("WWW-Authenticate", R"(Bearer error="invalid_token")");
            return sendResponse(stream, response, incoming.keepAlive);
        }
        const auto subject = claims.find(claims.contains("sub") ? "sub" : "prn");
        return sendResponse(
            stream,
            jsonResponse(200, {{"resource", "ok"}, {"sub", subject == claims.end() ? nlohmann::json() : *subject}}),
            incoming.keepAlive);
    }

    // Why the resource refuses `authorization`, "" when it accepts it (then `claims` holds the token's).
    std::string resourceProblem(std::string_view authorization, nlohmann::json& claims) const {
        const std::size_t space = authorization.find(' ');
        if (space == std::string_view::npos || !equalsIgnoreCase(authorization.substr(0, space), "Bearer")) {
            return "no Bearer token";
        }
        const std::string_view token = authorization.substr(space + 1);
        const std::optional<CompactJws> jws = splitCompactJws(token);
        if (!jws || !jwsProblem(token, signingKey_.key.get()).empty()) return "token not signed by this server";
        claims = decodeJwsJson(jws->payload);
        const auto exp = claims.is_object() ? claims.find("exp") : claims.end();
        const auto now =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
        if (exp == claims.end() || !exp->is_number() || exp->get<double>() <= static_cast<double>(now.count())) {
            return "token expired";
        }
        const std::lock_guard lock(stateMutex_);
        if (revokedTokens_.count(std::string(token)) != 0) return "token revoked";
        return {};
    }

    // Counts the request and picks its behaviour (see the class comment in the header).
    Reply nextTokenReply() {
        const std::lock_guard lock(stateMutex_);
        ++tokenRequests_;
        Reply reply;
        if (!scriptedReplies_.empty()) {
            reply = std::move(scriptedReplies_.front());
            scriptedReplies_.pop_front();
        } else if (failEvery_ != 0 && tokenRequests_ % failEvery_ == 0) {
            reply = serviceUnavailableReply();
        } else if (defaultReply_) {
            reply = *defaultReply_;
        }
        reply.delay += delay_;
        return reply;
    }

    ConnectionFate answerTokenRequest(Stream& stream, const IncomingRequest& incoming, const Route& route) {
        const Reply reply = nextTokenReply();
        if (route.endpoint == Endpoint::RealmToken) recordRealmTokenRequest(incoming.recorded);
        if (!stop_.sleepFor(reply.delay)) return ConnectionFate::Drop;
        return sendScripted(stream, incoming.keepAlive, reply, [&] {
            switch (route.endpoint) {
                case Endpoint::OAuthToken:
                    return oauthTokenAnswer(incoming.recorded, route.appId, reply);
                case Endpoint::RealmToken:
                    return realmTokenAnswer(incoming, route.appId, reply);
                default:
                    return mcaTokenAnswer(incoming.recorded, route.appId, reply);
            }
        });
    }

    ConnectionFate answerDiscovery(Stream& stream, const IncomingRequest& incoming, const Route& route) {
        const auto which = static_cast<std::size_t>(route.endpoint == Endpoint::OAuthMetadata
                                                        ? DiscoveryDocument::OAuthAuthorizationServer
                                                        : DiscoveryDocument::OpenIdConfiguration);
        Reply reply;
        std::optional<std::vector<std::string>> authMethods;  // nullopt: no such realm
        {
            const std::lock_guard lock(stateMutex_);
            ++discoveryRequests_;
            if (const auto realm = realms_.find(route.appId); realm != realms_.end()) {
                authMethods = realm->second.authMethods;
                if (realm->second.discoveryReplies[which]) reply = *realm->second.discoveryReplies[which];
            }
        }
        if (!stop_.sleepFor(reply.delay)) return ConnectionFate::Drop;
        return sendScripted(stream, incoming.keepAlive, reply, [&] {
            if (!authMethods) return errorResponse(404, "not_found", "no such realm");
            nlohmann::json document = {{"issuer", issuer(route.appId)},
                                       {"token_endpoint", tokenEndpoint(route.appId)},
                                       {"jwks_uri", issuer(route.appId) + std::string(kRealmKeysSuffix)},
                                       {"grant_types_supported", nlohmann::json::array({"client_credentials"})},
                                       {"token_endpoint_auth_signing_alg_values_supported",
                                        nlohmann::json::array({"RS256", "PS256", "ES256"})},
                                       {"tls_client_certificate_bound_access_tokens", true}};
            if (!authMethods->empty()) document["token_endpoint_auth_methods_supported"] = *authMethods;
            return jsonResponse(200, document);
        });
    }

    // Sends what `reply` scripts; `protocol()` makes the protocol's answer (Normal, DropMidReply,
    // Trickle), to which the reply's status (when not 200) and extra headers apply.
    template <typename Protocol>
    ConnectionFate sendScripted(Stream& stream, bool keepAlive, const Reply& reply, Protocol&& protocol) {
        const auto protocolResponse = [&] {
            Response response = protocol();
            if (reply.status != 200) response.status = reply.status;
            response.headers.insert(response.headers.end(), reply.headers.begin(), reply.headers.end());
            return response;
        };
        switch (reply.action) {
            case Action::Normal:
                return sendResponse(stream, protocolResponse(), keepAlive);
            case Action::Status:
                return sendResponse(stream, Response{reply.status, reply.headers, reply.body}, keepAlive);
            case Action::RawBody: {
                Response response{200, {{"Content-Type", "application/json"}}, reply.body};
                response.headers.insert(response.headers.end(), reply.headers.begin(), reply.headers.end());
                return sendResponse(stream, response, keepAlive);
            }
            case Action::Redirect: {
                Response response{reply.status == 200 ? 302 : reply.status, {{"Location", reply.location}}, {}};
                response.headers.insert(response.headers.end(), reply.headers.begin(), reply.headers.end());
                return sendResponse(stream, response, keepAlive);
            }
            case Action::DropBeforeReply:
                return ConnectionFate::Drop;
            case Action::DropMidReply: {
                const Response response = protocolResponse();
                stream.write(serializeHead(response, keepAlive) + response.body.substr(0, response.body.size() / 2));
                return ConnectionFate::Drop;
            }
            case Action::Trickle: {
                const Response response = protocolResponse();
                const std::string bytes = serializeHead(response, keepAlive) + response.body;
                for (std::size_t i = 0; i < bytes.size(); ++i) {
                    if (i > 0 && !stop_.sleepFor(reply.trickleInterval)) return ConnectionFate::Drop;
                    if (!stream.write(std::string_view(bytes).substr(i, 1))) return ConnectionFate::Drop;
                }
                return keepAlive ? ConnectionFate::KeepOpen : ConnectionFate::Close;
            }
            case Action::Hang:
                stream.drainUntilClosed();
                return ConnectionFate::Drop;
        }
        return ConnectionFate::Drop;
    }

    // The client authenticates with Basic (id and secret) or, as the Node SDK's
    // getAuthorizationHeaderByCertificate does, with "IMFCert <JWS signed by its certificate's key>".
    Response mcaTokenAnswer(const RecordedRequest& request, const std::string& appId, const Reply& reply) {
        const std::optional<FormFields> form = parseFormUrlEncoded(request.body);
        const std::string authorization = request.header("Authorization");
        std::string clientId;
        if (const auto jws = authorizationCredentials(authorization, "IMFCert")) {
            const std::string check =
                form ? checkCertificateClient(appId, *jws, *form, clientId) : "malformed form body";
            {
                const std::lock_guard lock(stateMutex_);
                lastCertificateCheck_ = check;
            }
            if (check != kCertificateOk) {
                Response response = errorResponse(401, "invalid_client", check);
                response.headers.emplace_back("WWW-Authenticate", R"(IMFCert realm="imf-authserver")");
                return response;
            }
        } else {
            const std::optional<ClientCredentials> credentials = parseBasicCredentials(authorization);
            if (!credentials || !isRegisteredClient(appId, *credentials)) {
                Response response = errorResponse(401, "invalid_client", "unknown client or wrong secret");
                response.headers.emplace_back("WWW-Authenticate", R"(Basic realm="imf-authserver")");
                return response;
            }
            clientId = credentials->clientId;
        }
        if (!form) return errorResponse(400, "invalid_request", "malformed form body");
        if (std::optional<Response> refusal = refuseGrant(*form)) return std::move(*refusal);

        const auto [token, expiresIn] =
            issueToken({{"iss", "mca-test-server"}, {"aud", appId}, {"prn", clientId}}, reply.expiresIn);
        nlohmann::json body = {{"access_token", token}, {"token_type", "Bearer"}};
        if (!reply.omitExpiresIn) body["expires_in"] = expiresIn;
        Response response = jsonResponse(200, body);
        response.headers.emplace_back("Cache-Control", "no-store");
        return response;
    }

    // RFC 6749 section 4.4 (App ID): Basic credentials form-urlencoded per section 2.3.1, optional scope.
    Response oauthTokenAnswer(const RecordedRequest& request, const std::string& tenantId, const Reply& reply) {
        const std::optional<ClientCredentials> credentials =
            parseOAuthBasicCredentials(request.header("Authorization"));
        if (!credentials || !isRegisteredOAuthClient(tenantId, *credentials)) {
            Response response = errorResponse(401, "invalid_client", "unknown client or wrong secret");
            response.headers.emplace_back("WWW-Authenticate", R"(Basic realm="oauth")");
            return response;
        }
        const std::optional<FormFields> form = parseFormUrlEncoded(request.body);
        if (!form) return errorResponse(400, "invalid_request", "malformed form body");
        if (std::optional<Response> refusal = refuseGrant(*form)) return std::move(*refusal);
        const std::vector<std::string_view> scopes = formValues(*form, "scope");
        if (scopes.size() > 1) return errorResponse(400, "invalid_request", "repeated scope");
        const std::string scope = scopes.empty() ? std::string() : std::string(scopes.front());

        nlohmann::json claims = {{"iss", oauthServerUrl(tenantId)}, {"aud", tenantId}, {"sub", credentials->clientId}};
        if (!scope.empty()) claims["scope"] = scope;
        return grantedToken(std::move(claims), scope, reply);
    }

    // RFC 6749 section 5.1: the token, its lifetime and the scope granted; never cached.
    Response grantedToken(nlohmann::json claims, const std::string& scope, const Reply& reply) {
        const auto [token, expiresIn] = issueToken(std::move(claims), reply.expiresIn);
        nlohmann::json body = {{"access_token", token}, {"token_type", "Bearer"}};
        if (!reply.omitExpiresIn) body["expires_in"] = expiresIn;
        if (!scope.empty()) body["scope"] = scope;
        Response response = jsonResponse(200, body);
        response.headers.emplace_back("Cache-Control", "no-store");
        response.headers.emplace_back("Pragma", "no-cache");
        return response;
    }

    // Any OAuth 2.0 server's client credentials grant, with every client authentication method
    // (the order of the checks is in the header, at addOAuth2Client).
    Response realmTokenAnswer(const IncomingRequest& incoming, const std::string& realm, const Reply& reply) {
        const RecordedRequest& request = incoming.recorded;
        const bool basic = authorizationCredentials(request.header("Authorization"), "Basic").has_value();
        const std::optional<FormFields> form = parseFormUrlEncoded(request.body);
        const ClientAuthOutcome auth =
            form ? authenticateRealmClient(realm, request, *form, basic, incoming.clientCertificateDer)
                 : ClientAuthOutcome{400, "malformed form body", {}, {}};
        {
            const std::lock_guard lock(stateMutex_);
            lastClientAuthCheck_ = auth.check;
        }
        if (auth.check != kClientAuthOk) {
            Response response =
                errorResponse(auth.status, auth.status == 401 ? "invalid_client" : "invalid_request", auth.check);
            // RFC 6749 section 5.2: a 401 to a client that used the Authorization header names its scheme.
            if (auth.status == 401 && basic)
                response.headers.emplace_back("WWW-Authenticate", "Basic realm=\"" + realm + "\"");
            return response;
        }
        if (std::optional<Response> refusal = refuseGrant(*form)) return std::move(*refusal);

        const std::vector<std::string_view> scopes = formValues(*form, "scope");
        const std::string scope = scopes.empty() ? std::string() : std::string(scopes.front());
        const std::vector<std::string_view> resources = formValues(*form, "resource");
        const std::vector<std::string_view> audiences = formValues(*form, "audience");
        nlohmann::json claims = {{"iss", issuer(realm)}, {"sub", auth.clientId}, {"client_id", auth.clientId}};
        if (resources.size() == 1) {
            claims["aud"] = resources.front();
        } else if (resources.size() > 1) {
            claims["aud"] = resources;
        } else {
            claims["aud"] = audiences.empty() ? std::string_view(auth.clientId) : audiences.front();
        }
        if (!scope.empty()) claims["scope"] = scope;
        if (auth.certificateThumbprint) claims["cnf"] = {{"x5t#S256", *auth.certificateThumbprint}};
        return grantedToken(std::move(claims), scope, reply);
    }

    ClientAuthOutcome authenticateRealmClient(const std::string& realm, const RecordedRequest& request,
                                              const FormFields& form, bool basic,
                                              const std::optional<std::string>& clientCertificateDer) {
        const auto refuse = [](std::string check, int status = 401) {
            return ClientAuthOutcome{status, std::move(check), {}, {}};
        };
        // RFC 6749 section 3.2: no parameter more than once; RFC 8707 lets `resource` repeat.
        for (const auto& [name, value] : form) {
            if (name != "resource" && formValues(form, name).size() > 1)
                return refuse("repeated parameter " + name, 400);
        }
        const auto field = [&](std::string_view name) -> std::optional<std::string> {
            const std::vector<std::string_view> values = formValues(form, name);
            if (values.empty()) return std::nullopt;
            return std::string(values.front());
        };
        const std::optional<std::string> clientIdField = field("client_id");
        const std::optional<std::string> assertionText = field("client_assertion");
        const std::optional<std::string> secretField = field("client_secret");
        if (int{basic} + int{assertionText.has_value()} + int{secretField.has_value()} > 1) {
            return refuse("more than one client authentication method", 400);
        }

        // The method is recognized by what is present, then must be the client's registered one.
        ClientAuth method;
        std::string clientId, secret;
        nlohmann::json assertionHeader, assertionClaims;
        if (basic) {
            std::optional<ClientCredentials> credentials = parseOAuthBasicCredentials(request.header("Authorization"));
            if (!credentials) return refuse("malformed Basic credentials");
            if (clientIdField && *clientIdField != credentials->clientId) {
                return refuse("client_id does not match the Basic credentials");
            }
            method = ClientAuth::SecretBasic;
            clientId = std::move(credentials->clientId);
            secret = std::move(credentials->secret);
        } else if (secretField) {
            if (!clientIdField) return refuse("client_secret without client_id");
            method = ClientAuth::SecretPost;
            clientId = *clientIdField;
            secret = *secretField;
        } else if (assertionText) {
            if (field("client_assertion_type") != std::string(kJwtBearer)) {
                return refuse("client_assertion_type is not jwt-bearer");
            }
            const std::optional<CompactJws> jws = splitCompactJws(*assertionText);
            if (jws) {
                assertionHeader = decodeJwsJson(jws->header);
                assertionClaims = decodeJwsJson(jws->payload);
            }
            if (!jws || !assertionHeader.is_object() || !assertionClaims.is_object()) {
                return refuse("malformed client assertion");
            }
            // RFC 7523 section 3: sub is the client id (iss too, checked once the signature holds).
            const auto named = [&](const char* claim) -> std::optional<std::string> {
                const auto found = assertionClaims.find(claim);
                if (found == assertionClaims.end() || !found->is_string()) return std::nullopt;
                return found->get<std::string>();
            };
            std::optional<std::string> id = named("sub");
            if (!id) id = named("iss");
            if (!id) id = clientIdField;
            if (!id) return refuse("client assertion names no client");
            method = ClientAuth::PrivateKeyJwt;
            clientId = std::move(*id);
        } else if (clientIdField) {
            method = ClientAuth::TlsClientAuth;
            clientId = *clientIdField;
        } else {
            return refuse("no client authentication");
        }

        std::optional<RealmClient> registered;
        {
            const std::lock_guard lock(stateMutex_);
            if (const auto found = realms_.find(realm); found != realms_.end()) {
                if (const auto client = found->second.clients.find(clientId); client != found->second.clients.end()) {
                    registered = client->second;
                }
            }
        }
        if (!registered) return refuse("unknown client");
        if (registered->client.method != method) return refuse("client authentication method not allowed");

        ClientAuthOutcome outcome{200, std::string(kClientAuthOk), clientId, {}};
        switch (method) {
            case ClientAuth::SecretBasic:
            case ClientAuth::SecretPost:
                if (secret != registered->client.secret) return refuse("wrong secret");
                break;
            case ClientAuth::PrivateKeyJwt: {
                std::string check = checkClientAssertion(realm, registered->client, *assertionText, assertionHeader,
                                                         assertionClaims, clientIdField);
                if (check != kClientAuthOk) return refuse(std::move(check));
                break;
            }
            case ClientAuth::TlsClientAuth:
                if (!clientCertificateDer) return refuse("no client certificate");
                if (*clientCertificateDer != registered->certificateDer) {
                    return refuse("client certificate does not match");
                }
                outcome.certificateThumbprint = base64UrlEncode(sha256(*clientCertificateDer));
                break;
        }
        return outcome;
    }

    // RFC 7523 section 3 and OpenID Connect Core section 9; kClientAuthOk, or the failed check.
    std::string checkClientAssertion(const std::string& realm, const OAuth2Client& client, const std::string& jws,
                                     const nlohmann::json& header, const nlohmann::json& claims,
                                     const std::optional<std::string>& clientIdField) {
        std::string why;
        if (!verifyJws(jws, client.publicKeyPem, &why))
            return why == "malformed JWS" ? "malformed client assertion" : why;
        if (const auto typ = header.find("typ"); typ != header.end() && *typ != "JWT") return "typ is not JWT";
        if (claims.value("iss", nlohmann::json()) != client.clientId ||
            claims.value("sub", nlohmann::json()) != client.clientId) {
            return "iss and sub must both be the client id";
        }
        if (clientIdField && *clientIdField != client.clientId) return "client_id does not match the assertion";

        const std::string endpoint = tokenEndpoint(realm);
        const nlohmann::json aud = claims.value("aud", nlohmann::json());
        const bool audienceOk =
            aud == endpoint || (aud.is_array() && std::find(aud.begin(), aud.end(), endpoint) != aud.end());
        if (!audienceOk) return "aud is not the token endpoint";

        const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
        const auto exp = claims.find("exp");
        if (exp == claims.end() || !exp->is_number()) return "missing exp";
        if (exp->get<double>() <= now) return "assertion expired";
        if (exp->get<double>() > now + std::chrono::duration<double>(kMaxAssertionLifetime).count()) {
            return "exp more than 10 minutes ahead";
        }
        if (const auto iat = claims.find("iat"); iat != claims.end()) {
            if (!iat->is_number()) return "iat is not a number";
            if (iat->get<double>() > now + std::chrono::duration<double>(kMaxIatAhead).count()) {
                return "iat in the future";
            }
        }
        const auto jti = claims.find("jti");
        if (jti == claims.end() || !jti->is_string() || jti->get_ref<const std::string&>().empty()) {
            return "missing jti";
        }
        const std::lock_guard lock(stateMutex_);
        const auto realmEntry = realms_.find(realm);
        if (realmEntry == realms_.end()) return "unknown client";
        const auto entry = realmEntry->second.clients.find(client.clientId);
        if (entry == realmEntry->second.clients.end()) return "unknown client";
        if (!entry->second.jtis.insert(jti->get<std::string>()).second) return "jti replayed";
        return std::string(kClientAuthOk);
    }

    // What lastTokenForm and lastClientAssertion* report, whatever the reply will be.
    void recordRealmTokenRequest(const RecordedRequest& request) {
        std::optional<FormFields> form = parseFormUrlEncoded(request.body);
        const std::vector<std::string_view> assertions =
            form ? formValues(*form, "client_assertion") : std::vector<std::string_view>{};
        nlohmann::json header, claims;
        if (!assertions.empty()) {
            if (const std::optional<CompactJws> jws = splitCompactJws(assertions.front())) {
                header = decodeJwsJson(jws->header);
                claims = decodeJwsJson(jws->payload);
            }
            if (header.is_discarded()) header = nullptr;
            if (claims.is_discarded()) claims = nullptr;
        }
        const std::lock_guard lock(stateMutex_);
        lastTokenForm_ = form ? std::move(*form) : FormFields{};
        if (!assertions.empty()) {
            lastAssertionHeader_ = std::move(header);
            lastAssertionClaims_ = std::move(claims);
        }
    }

    // The grant checks both token endpoints share; nullopt when the form asks for client_credentials.
    static std::optional<Response> refuseGrant(const FormFields& form) {
        const std::vector<std::string_view> grantTypes = formValues(form, "grant_type");
        if (grantTypes.empty()) return errorResponse(400, "invalid_request", "missing grant_type");
        if (grantTypes.size() > 1) return errorResponse(400, "invalid_request", "repeated grant_type");
        if (grantTypes.front() != "client_credentials") {
            return errorResponse(400, "unsupported_grant_type", "only client_credentials is supported");
        }
        return std::nullopt;
    }

    // Checks an IMFCert JWS in the order the header documents; kCertificateOk (with the
    // client's CN in `clientId`) or the check that failed.
    std::string checkCertificateClient(const std::string& appId, std::string_view jwsText, const FormFields& form,
                                       std::string& clientId) const {
        const std::optional<CompactJws> jws = splitCompactJws(jwsText);
        if (!jws) return "malformed JWS";
        const nlohmann::json header = decodeJwsJson(jws->header);
        if (!header.is_object()) return "malformed JWS header";
        const auto alg = header.find("alg");
        if (alg == header.end() || *alg != "RS256") return "alg is not RS256";
        const std::optional<std::string> der = x5cCertificateBytes(header);
        if (!der) return "missing or malformed x5c";
        const auto* derCursor = reinterpret_cast<const unsigned char*>(der->data());
        const X509Ptr certificate(d2i_X509(nullptr, &derCursor, static_cast<long>(der->size())));
        ERR_clear_error();
        if (!certificate || derCursor != reinterpret_cast<const unsigned char*>(der->data() + der->size())) {
            return "x5c is not a DER certificate";
        }

        EVP_PKEY* key = X509_get0_pubkey(certificate.get());
        if (key == nullptr || EVP_PKEY_is_a(key, "RSA") != 1) return "certificate key is not RSA";
        const std::optional<std::string> signature = base64Decode(jws->signature, Base64::Url);
        const bool signatureValid = signature && verifySha256Signature(key, jws->signingInput, *signature);
        ERR_clear_error();
        if (!signatureValid) return "signature does not verify";

        std::optional<std::string> commonName = commonNameOf(certificate.get());
        if (!commonName) return "certificate has no CN";
        const std::vector<std::string_view> clientIds = formValues(form, "client_id");
        if (clientIds.size() != 1) return "client_id missing or repeated";
        if (*commonName != clientIds.front()) return "certificate CN does not match client_id";

        if (!isRegisteredCertificate(appId, *der)) return "certificate not registered for this app";

        const nlohmann::json payload = decodeJwsJson(jws->payload);
        const auto timestamp = payload.find("timestamp");
        if (timestamp == payload.end() || !timestamp->is_number()) return "missing timestamp";
        const double nowMs =
            std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
        const double skewMs = std::chrono::duration<double, std::milli>(kCertificateTimestampSkew).count();
        if (std::fabs(timestamp->get<double>() - nowMs) > skewMs) return "timestamp not within 5 minutes";

        clientId = std::move(*commonName);
        return std::string(kCertificateOk);
    }

    bool isRegisteredClient(const std::string& appId, const ClientCredentials& credentials) const {
        const std::lock_guard lock(stateMutex_);
        const auto found = secrets_.find({appId, credentials.clientId});
        return found != secrets_.end() && found->second == credentials.secret;
    }
    bool isRegisteredOAuthClient(const std::string& tenantId, const ClientCredentials& credentials) const {
        const std::lock_guard lock(stateMutex_);
        const auto found = oauthSecrets_.find({tenantId, credentials.clientId});
        return found != oauthSecrets_.end() && found->second == credentials.secret;
    }
    bool isRegisteredCertificate(const std::string& appId, const std::string& der) const {
        const std::lock_guard lock(stateMutex_);
        return certificates_.count({appId, der}) != 0;
    }

    struct IssuedToken {
        std::string jwt;
        long long expiresIn;
    };

    // Signs `claims` plus iat, exp, jti (and the padding claim).
    IssuedToken issueToken(nlohmann::json claims, std::optional<long long> expiresInOverride) {
        long long expiresIn;
        std::size_t padding;
        std::uint64_t tokenNumber;
        {
            const std::lock_guard lock(stateMutex_);
            expiresIn = expiresInOverride.value_or(expiresIn_);
            padding = tokenPadding_;
            tokenNumber = ++tokensIssued_;
        }
        const long long now =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        claims["iat"] = now;
        claims["exp"] = now + expiresIn;
        claims["jti"] = std::to_string(tokenNumber);
        if (padding > 0) claims["pad"] = std::string(padding, 'x');

        const std::string signingInput =
            base64UrlEncode(kJwtHeader) + "." +
            base64UrlEncode(claims.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        std::string jwt =
            signingInput + "." + base64UrlEncode(signWithAlg(signingKey_.key.get(), JwsAlg::RS256, signingInput));
        {
            const std::lock_guard lock(stateMutex_);
            lastIssuedToken_ = jwt;
            if (tokensToRevoke_ > 0) {
                --tokensToRevoke_;
                revokedTokens_.insert(jwt);
            }
        }
        return {std::move(jwt), expiresIn};
    }

    const SigningKey& signingKey_;
    const SslContextPtr tlsContext_;  // null = plain HTTP
    const StopSignal stop_;
    UniqueFd listenFd_;
    const std::uint16_t port_;
    std::thread acceptThread_;
    std::list<std::unique_ptr<Connection>> connections_;  // used by the accept thread, then by the destructor
    std::atomic<std::size_t> connectionsAccepted_{0};
    std::atomic<std::size_t> openConnections_{0};
    std::atomic<std::size_t> peakOpenConnections_{0};

    mutable std::mutex stateMutex_;                                            // guards everything below
    std::map<std::pair<std::string, std::string>, std::string> secrets_;       // (appId, clientId) -> secret
    std::map<std::pair<std::string, std::string>, std::string> oauthSecrets_;  // (tenantId, clientId) -> secret
    std::set<std::pair<std::string, std::string>> certificates_;               // (appId, certificate DER)
    long long expiresIn_;
    std::size_t tokenPadding_;
    std::chrono::milliseconds delay_{0};
    std::deque<Reply> scriptedReplies_;
    std::optional<Reply> defaultReply_;
    unsigned failEvery_ = 0;
    std::size_t tokenRequests_ = 0;
    std::uint64_t tokensIssued_ = 0;
    std::vector<RecordedRequest> requests_;
    std::string lastIssuedToken_;
    std::string lastCertificateCheck_;
    std::map<std::string, Realm> realms_;
    std::size_t discoveryRequests_ = 0;
    std::string lastClientAuthCheck_;
    nlohmann::json lastAssertionHeader_, lastAssertionClaims_;
    FormFields lastTokenForm_;
    std::set<std::string> revokedTokens_;
    std::size_t tokensToRevoke_ = 0;
    std::size_t resourceRequests_ = 0;
};

McaTestServer::McaTestServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
McaTestServer::~McaTestServer() = default;

std::uint16_t McaTestServer::port() const { return impl_->port(); }
std::string McaTestServer::baseUrl() const { return impl_->baseUrl(); }
void McaTestServer::addClient(std::string appId, std::string clientId, std::string secret) {
    impl_->addClient(std::move(appId), std::move(clientId), std::move(secret));
}
void McaTestServer::setExpiresIn(long long seconds) { impl_->setExpiresIn(seconds); }
void McaTestServer::setTokenPadding(std::size_t bytes) { impl_->setTokenPadding(bytes); }
void McaTestServer::setDelay(std::chrono::milliseconds d) { impl_->setDelay(d); }
void McaTestServer::pushReply(Reply r) { impl_->pushReply(std::move(r)); }
void McaTestServer::setDefaultReply(std::optional<Reply> r) { impl_->setDefaultReply(std::move(r)); }
void McaTestServer::setFailEvery(unsigned n) { impl_->setFailEvery(n); }
std::size_t McaTestServer::tokenRequests() const { return impl_->tokenRequests(); }
std::size_t McaTestServer::connectionsAccepted() const { return impl_->connectionsAccepted(); }
std::size_t McaTestServer::openConnections() const { return impl_->openConnections(); }
std::size_t McaTestServer::peakOpenConnections() const { return impl_->peakOpenConnections(); }
std::vector<RecordedRequest> McaTestServer::requests() const { return impl_->requests(); }
void McaTestServer::clearRequests() { impl_->clearRequests(); }
std::string McaTestServer::publicKeyPem() const { return impl_->publicKeyPem(); }
std::string McaTestServer::lastIssuedToken() const { return impl_->lastIssuedToken(); }
std::string McaTestServer::oauthServerUrl(const std::string& tenantId) const { return impl_->oauthServerUrl(tenantId); }
void McaTestServer::addCertificateClient(std::string appId, std::string certificatePem) {
    impl_->addCertificateClient(std::move(appId), certificatePem);
}
void McaTestServer::addOAuthClient(std::string tenantId, std::string clientId, std::string secret) {
    impl_->addOAuthClient(std::move(tenantId), std::move(clientId), std::move(secret));
}
std::string McaTestServer::lastCertificateCheck() const { return impl_->lastCertificateCheck(); }
void McaTestServer::addOAuth2Client(const std::string& realm, OAuth2Client client) {
    impl_->addOAuth2Client(realm, std::move(client));
}
std::string McaTestServer::issuer(const std::string& realm) const { return impl_->issuer(realm); }
std::string McaTestServer::tokenEndpoint(const std::string& realm) const { return impl_->tokenEndpoint(realm); }
void McaTestServer::setDiscoveryReply(const std::string& realm, DiscoveryDocument which, std::optional<Reply> reply) {
    impl_->setDiscoveryReply(realm, which, std::move(reply));
}
void McaTestServer::setSupportedAuthMethods(const std::string& realm, std::vector<std::string> methods) {
    impl_->setSupportedAuthMethods(realm, std::move(methods));
}
std::size_t McaTestServer::discoveryRequests() const { return impl_->discoveryRequests(); }
std::string McaTestServer::lastClientAuthCheck() const { return impl_->lastClientAuthCheck(); }
nlohmann::json McaTestServer::lastClientAssertionHeader() const { return impl_->lastClientAssertionHeader(); }
nlohmann::json McaTestServer::lastClientAssertionClaims() const { return impl_->lastClientAssertionClaims(); }
std::vector<std::pair<std::string, std::string>> McaTestServer::lastTokenForm() const { return impl_->lastTokenForm(); }
std::string McaTestServer::resourceUrl() const { return impl_->resourceUrl(); }
void McaTestServer::revokeToken(const std::string& header) { impl_->revokeToken(header); }
void McaTestServer::revokeNextTokens(std::size_t count) { impl_->revokeNextTokens(count); }
std::size_t McaTestServer::resourceRequests() const { return impl_->resourceRequests(); }

const char* clientAuthName(ClientAuth method) {
    switch (method) {
        case ClientAuth::SecretBasic:
            return "client_secret_basic";
        case ClientAuth::SecretPost:
            return "client_secret_post";
        case ClientAuth::PrivateKeyJwt:
            return "private_key_jwt";
        case ClientAuth::TlsClientAuth:
            return "tls_client_auth";
    }
    return "unknown";
}

bool verifyJws(const std::string& jws, const std::string& keyPem, std::string* why) {
    const PkeyPtr key = keyFromPem(keyPem);
    const std::string problem = key ? jwsProblem(jws, key.get()) : "no key in PEM";
    if (!problem.empty() && why != nullptr) *why = problem;
    return problem.empty();
}

std::string signJws(const std::string& privateKeyPem, const std::string& alg, const nlohmann::json& claims,
                    const std::string& kid) {
    const BioPtr bio = memoryBio(privateKeyPem);
    const PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassword, nullptr) : nullptr);
    ERR_clear_error();
    if (!key) throw std::invalid_argument("signJws: no private key PEM");
    const std::optional<JwsAlg> jwsAlg = jwsAlgOf(alg);
    if (!jwsAlg || !algFitsKey(*jwsAlg, key.get())) throw std::invalid_argument("signJws: alg " + alg + " unusable");
    nlohmann::json header = {{"alg", alg}, {"typ", "JWT"}};
    if (!kid.empty()) header["kid"] = kid;
    const std::string signingInput = base64UrlEncode(header.dump()) + "." + base64UrlEncode(claims.dump());
    return signingInput + "." + base64UrlEncode(signWithAlg(key.get(), *jwsAlg, signingInput));
}

bool verifyRs256Jwt(const std::string& jwt, const std::string& publicKeyPem) {
    const std::optional<CompactJws> jws = splitCompactJws(jwt);
    const bool valid = jws && verifyRs256Signature(*jws, publicKeyPem);
    ERR_clear_error();  // a failed check leaves errors queued on this thread
    return valid;
}

nlohmann::json decodeJwtPayload(const std::string& jwt) {
    const std::optional<CompactJws> jws = splitCompactJws(jwt);
    if (!jws) throw std::invalid_argument("not a compact JWS: " + jwt.substr(0, 64));
    const std::optional<std::string> payload = base64Decode(jws->payload, Base64::Url);
    if (!payload) throw std::invalid_argument("JWT payload is not base64url");
    return nlohmann::json::parse(*payload);
}

}  // namespace mca::test
