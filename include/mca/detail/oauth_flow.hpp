#pragma once

// The OAuth 2.0 client-credentials flow of any authorization server (mca::OAuthCredentials): the
// identity of a tenant's token, the checks made before anything is sent, what is parsed once
// per tenant (the signing key, the assertion file), and the request each client
// authentication method sends.

#include "../auth_client.hpp"
#include "../version.hpp"
#include "jws.hpp"
#include "secret.hpp"
#include "token_cache.hpp"
#include "token_request.hpp"

#include <sys/stat.h>

#include <charconv>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

inline constexpr std::string_view kJwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The method's name on the wire and in server metadata (RFC 8414 / IANA registry). A ready
/// assertion is sent as private_key_jwt is.
inline const char* authMethodName(ClientAuthMethod method) noexcept {
    switch (method) {
        case ClientAuthMethod::SecretBasic:
            return "client_secret_basic";
        case ClientAuthMethod::SecretPost:
            return "client_secret_post";
        case ClientAuthMethod::PrivateKeyJwt:
        case ClientAuthMethod::ClientAssertion:
            return "private_key_jwt";
        case ClientAuthMethod::TlsClientAuth:
            return "tls_client_auth";
    }
    return "unknown";
}

/// Every field that changes the token the server issues, in a fixed order; lists carry their
/// length so that no two tenants give the same sequence. Allocation-free: a hit runs it.
template <class Visit>
void forEachIdentityField(const OAuthCredentials& tenant, Visit&& visit) {
    const auto count = [&visit](std::size_t size) {
        char text[24];
        const auto end = std::to_chars(text, text + sizeof text, size).ptr;
        visit(std::string_view(text, static_cast<std::size_t>(end - text)));
    };
    visit("oauth");
    visit(trimWhitespace(tenant.tokenUrl));
    visit(trimWhitespace(tenant.issuer));
    visit(tenant.clientId);
    count(static_cast<std::size_t>(tenant.authMethod));
    visit(tenant.secret);
    visit(tenant.privateKeyPem);
    visit(tenant.certificatePem);
    visit(tenant.keyId);
    visit(tenant.signingAlg);
    visit(tenant.assertionAudience);
    visit(tenant.assertionFile);
    visit(tenant.scope);
    count(tenant.resources.size());
    for (const auto& resource : tenant.resources) visit(resource);
    visit(tenant.audience);
    count(tenant.extraParameters.size());
    for (const auto& [name, value] : tenant.extraParameters) {
        visit(name);
        visit(value);
    }
}

/// What seals the tenant's tokens in a shared store: what only the tenant holds. A ready
/// assertion from a file has no stable secret: such tokens stay process-local.
inline SecretString sealingSecretOf(const OAuthCredentials& tenant) {
    switch (tenant.authMethod) {
        case ClientAuthMethod::SecretBasic:
        case ClientAuthMethod::SecretPost:
            return SecretString(tenant.secret);
        case ClientAuthMethod::PrivateKeyJwt:
        case ClientAuthMethod::TlsClientAuth:
            return SecretString(tenant.privateKeyPem);
        case ClientAuthMethod::ClientAssertion:
            break;
    }
    return SecretString();
}

inline bool isReservedFormField(std::string_view name) {
    for (const std::string_view reserved :
         {"grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type"}) {
        if (name == reserved) return true;
    }
    return false;
}

/// The cheap checks, made on every call with the credentials themselves: what is missing.
/// Keys and certificates are read when a fetch starts (see OAuthTenantState).
inline void requireCredentials(const OAuthCredentials& tenant, const char* origin = "") {
    const auto fail = [origin](Errc code, const std::string& what) { throw Error(code, what + origin); };
    if (tenant.clientId.empty()) fail(Errc::MissingClientId, "clientId is missing");
    if (trimWhitespace(tenant.tokenUrl).empty() && trimWhitespace(tenant.issuer).empty()) {
        fail(Errc::MissingServerUrl, "neither tokenUrl nor issuer is set");
    }
    switch (tenant.authMethod) {
        case ClientAuthMethod::SecretBasic:
        case ClientAuthMethod::SecretPost:
            if (tenant.secret.empty()) fail(Errc::MissingSecret, "secret is missing");
            break;
        case ClientAuthMethod::PrivateKeyJwt:
            if (trimWhitespace(tenant.privateKeyPem).empty()) fail(Errc::MissingPem, "privateKeyPem is missing");
            break;
        case ClientAuthMethod::TlsClientAuth:
            if (trimWhitespace(tenant.certificatePem).empty()) fail(Errc::MissingPem, "certificatePem is missing");
            if (trimWhitespace(tenant.privateKeyPem).empty()) fail(Errc::MissingPem, "privateKeyPem is missing");
            break;
        case ClientAuthMethod::ClientAssertion:
            if (tenant.assertionFile.empty()) fail(Errc::InvalidConfiguration, "assertionFile is missing");
            break;
        default:
            fail(Errc::InvalidConfiguration, "authMethod is not a ClientAuthMethod");
    }
    for (const auto& [name, value] : tenant.extraParameters) {
        if (name.empty()) fail(Errc::InvalidConfiguration, "an extra parameter has no name");
        if (isReservedFormField(name)) {
            fail(Errc::InvalidConfiguration, "extraParameters may not set '" + name + "': the client sets it");
        }
    }
}

/// A client assertion kept in a file that another process rotates (a Kubernetes projected
/// service-account token is replaced through a symlink swap): read again whenever the file's
/// identity, size or modification time changed since the last read.
class AssertionFile {
  public:
    explicit AssertionFile(std::string path) : path_(std::move(path)) {}

    /// The assertion, trimmed. Throws InvalidConfiguration when the file cannot be read or is empty.
    SecretString read() const {
        struct stat now {};
        if (::stat(path_.c_str(), &now) != 0) {
            throw Error(Errc::InvalidConfiguration, "assertionFile " + path_ + " cannot be read");
        }
        const std::lock_guard lock(mutex_);
        if (!content_.view().empty() && sameFile(now, seen_)) return content_;
        std::ifstream file(path_, std::ios::binary);
        std::ostringstream contents;
        if (!file || !(contents << file.rdbuf())) {
            throw Error(Errc::InvalidConfiguration, "assertionFile " + path_ + " cannot be read");
        }
        SecretString whole(contents.str());
        SecretString trimmed(trimWhitespace(whole.view()));
        if (trimmed.view().empty()) throw Error(Errc::InvalidConfiguration, "assertionFile " + path_ + " is empty");
        content_ = trimmed;
        seen_ = now;
        return content_;
    }

  private:
    static bool sameFile(const struct stat& a, const struct stat& b) noexcept {
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
               a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
    }

    const std::string path_;
    mutable std::mutex mutex_;
    mutable struct stat seen_ {};
    mutable SecretString content_;
};

/// What is parsed once per tenant, not once per request: the signing key, the checked TLS
/// client identity, the assertion file's reader.
struct OAuthTenantState {
    explicit OAuthTenantState(const OAuthCredentials& tenant) {
        switch (tenant.authMethod) {
            case ClientAuthMethod::PrivateKeyJwt:
                signingKey.emplace(tenant.privateKeyPem, tenant.certificatePem, tenant.signingAlg);
                break;
            case ClientAuthMethod::TlsClientAuth:
                checkTlsClientIdentity(tenant.certificatePem, tenant.privateKeyPem);
                break;
            case ClientAuthMethod::ClientAssertion:
                assertion.emplace(tenant.assertionFile);
                assertion->read();  // a missing or empty file is reported before anything is sent
                break;
            default:
                break;
        }
    }

    std::optional<SigningKey> signingKey;
    std::optional<AssertionFile> assertion;
};

/// The parsed state of recently used tenants, by cache key. Consulted when a fetch starts,
/// never on a hit. Bounded: the oldest entries go first.
class OAuthTenantStates {
  public:
    explicit OAuthTenantStates(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 16)) {}

    std::shared_ptr<const OAuthTenantState> of(const CacheKey& key, const OAuthCredentials& tenant) {
        {
            const std::lock_guard lock(mutex_);
            if (const auto found = states_.find(key); found != states_.end()) return found->second;
        }
        auto state = std::make_shared<const OAuthTenantState>(tenant);  // throws for unusable credentials
        const std::lock_guard lock(mutex_);
        const auto [entry, inserted] = states_.emplace(key, std::move(state));
        if (inserted) {
            order_.push_back(key);
            if (order_.size() > capacity_) {
                states_.erase(order_.front());
                order_.pop_front();
            }
        }
        return entry->second;
    }

  private:
    const std::size_t capacity_;
    std::mutex mutex_;
    std::unordered_map<CacheKey, std::shared_ptr<const OAuthTenantState>, CacheKeyHash> states_;
    std::deque<CacheKey> order_;
};

/// The form every method sends: the grant, then the tenant's parameters.
inline std::string oauthForm(const OAuthCredentials& tenant) {
    std::string form(kClientCredentialsForm);
    const auto add = [&form](std::string_view name, std::string_view value) {
        form.append("&").append(formEncode(name)).append("=").append(formEncode(value));
    };
    if (!tenant.scope.empty()) add("scope", tenant.scope);
    for (const auto& resource : tenant.resources) add("resource", resource);
    if (!tenant.audience.empty()) add("audience", tenant.audience);
    for (const auto& [name, value] : tenant.extraParameters) add(name, value);
    return form;
}

/// Whether a URL's scheme is plain http (case-insensitive, as URL schemes are).
inline bool isPlainHttp(std::string_view url) { return url.size() > 7 && startsWithNoCase(url, "http://"); }

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
