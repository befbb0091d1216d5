#pragma once

// The token flows: what identifies a tenant's token (one field list, from which both the cache
// key and the shared store's name are made, so they cannot drift) and what a fetch for it sends.

#include "../auth_client.hpp"
#include "../version.hpp"
#include "certificate.hpp"
#include "http_engine.hpp"
#include "oauth_flow.hpp"
#include "sealing.hpp"
#include "secret.hpp"
#include "token_cache.hpp"
#include "token_reply.hpp"
#include "token_request.hpp"

#include <array>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

/// What a fetch sends, built from a tenant's credentials when a fetch starts (never on a hit).
struct FetchSpec {
    std::string url;                   // empty: the token endpoint is discovered from `issuer`
    std::string issuer;                // discovery (see ServerMetadataCache)
    std::string authMethod;            // the method's metadata name, checked against discovery
    SecretString body;                 // may hold the secret (client_secret_post)
    SecretString authorization;        // the Authorization header value; empty: none
    std::string clientCertificatePem;  // TLS client authentication
    SecretString clientKeyPem;
    std::function<void(HttpRequest&)> beforeAttempt;  // see HttpRequest::beforeAttempt
    std::vector<SecretString> redactions;             // never to appear in a message
    std::string label;                                // who the token is for, for messages and logs
    std::vector<SecretString> identity;               // the tenant's identity fields (see forEachIdentityField)
    SecretString sealingSecret;  // what seals the tenant's tokens in the shared store; empty: not shared
};

/// What building a fetch's request may use besides the credentials.
struct FlowContext {
    SystemTime now;
    const CacheKey& key;
    OAuthTenantStates& oauthStates;  // what OAuth tenants parse once
};

/// A server URL as an identity field: trimmed, without a trailing '/' (the MCA path is built
/// from the URL with exactly one '/' added, so both spellings send the same request).
inline std::string_view serverUrlField(std::string_view url) {
    url = trimWhitespace(url);
    if (!url.empty() && url.back() == '/') url.remove_suffix(1);
    return url;
}

/// A token endpoint as an identity field: trimmed only, because it is sent as given, and
/// `.../token` and `.../token/` may be two endpoints.
inline std::string_view tokenUrlField(std::string_view url) { return trimWhitespace(url); }

/// The identity of a secret-flow tenant: everything that decides which token the server issues.
inline std::array<std::string_view, 7> identityOf(const Credentials& tenant) {
    return {"secret-flow",
            serverUrlField(tenant.serverUrl),
            tokenUrlField(tenant.tokenUrl),
            tenant.appId,
            tenant.clientId,
            tenant.scope,
            tenant.secret};
}

/// The key covers the private key too: a caller holding the certificate with another key must
/// not be handed the token.
inline std::array<std::string_view, 5> identityOf(const CertificateCredentials& tenant) {
    return {"certificate-flow", serverUrlField(tenant.serverUrl), tenant.appId, tenant.certificatePem,
            tenant.privateKeyPem};
}

template <class Visit>
void forEachIdentityField(const Credentials& tenant, Visit&& visit) {
    for (const std::string_view field : identityOf(tenant)) visit(field);
}
template <class Visit>
void forEachIdentityField(const CertificateCredentials& tenant, Visit&& visit) {
    for (const std::string_view field : identityOf(tenant)) visit(field);
}

/// The cache key of a tenant. Allocation-free after a thread's first call: a hit computes it.
template <class Tenant>
CacheKey cacheKeyOf(const Tenant& tenant) {
    KeyedDigest& digest = KeyedDigest::forThisThread();
    forEachIdentityField(tenant, [&digest](std::string_view field) { digest.field(field); });
    return digest.finish();
}

/// The identity fields as a fetch carries them (copies, wiped with the spec).
template <class Tenant>
std::vector<SecretString> identityCopy(const Tenant& tenant) {
    std::vector<SecretString> copy;
    forEachIdentityField(tenant, [&copy](std::string_view field) { copy.emplace_back(field); });
    return copy;
}

/// What seals a tenant's tokens in the shared store: what only the tenant holds.
inline SecretString sealingSecretOf(const Credentials& tenant) { return SecretString(tenant.secret); }
inline SecretString sealingSecretOf(const CertificateCredentials& tenant) { return SecretString(tenant.privateKeyPem); }

// --- The secret flow: MCA, or any OAuth 2.0 client-credentials endpoint (tokenUrl) -----------

inline void requireCredentials(const Credentials& tenant, const char* origin = "") {
    const bool mca = tenant.tokenUrl.empty();
    if (mca && tenant.appId.empty()) throw Error(Errc::MissingAppId, std::string("appId is missing") + origin);
    if (tenant.clientId.empty()) throw Error(Errc::MissingClientId, std::string("clientId is missing") + origin);
    if (tenant.secret.empty()) throw Error(Errc::MissingSecret, std::string("secret is missing") + origin);
    if (mca && trimWhitespace(tenant.serverUrl).empty()) {
        throw Error(Errc::MissingServerUrl, std::string("serverUrl is missing") + origin);
    }
}

inline std::string tenantLabel(const std::string& appId, const char* clientKind, const std::string& clientId) {
    return (appId.empty() ? std::string() : "appId '" + appId + "', ") + clientKind + " '" + clientId + "'";
}

inline FetchSpec fetchSpecOf(const Credentials& tenant, const FlowContext& /*flow*/) {
    FetchSpec spec;
    spec.body.buffer() = kClientCredentialsForm;
    if (!tenant.scope.empty()) spec.body.buffer() += "&scope=" + formEncode(tenant.scope);
    if (tenant.tokenUrl.empty()) {
        const auto serverUrl = normalizeServerUrl(tenant.serverUrl);
        if (!serverUrl) throw Error(Errc::MissingServerUrl, "serverUrl is not an absolute http(s) URL with a host");
        spec.url = mcaTokenUrl(*serverUrl, tenant.appId);
        spec.authorization = basicAuthorization(tenant.clientId, tenant.secret);
    } else {
        if (!normalizeServerUrl(tenant.tokenUrl)) {
            throw Error(Errc::MissingServerUrl, "tokenUrl is not an absolute http(s) URL with a host");
        }
        spec.url = std::string(tokenUrlField(tenant.tokenUrl));
        spec.authorization = oauthBasicAuthorization(tenant.clientId, tenant.secret);
    }
    spec.redactions.emplace_back(tenant.secret);
    spec.redactions.push_back(spec.authorization);
    spec.label = tenantLabel(tenant.appId, "clientId", tenant.clientId);
    spec.identity = identityCopy(tenant);
    spec.sealingSecret = sealingSecretOf(tenant);
    return spec;
}

// --- The certificate flow ----------------------------------------------------------------------

inline void requireCredentials(const CertificateCredentials& tenant, const char* /*origin*/ = "") {
    if (tenant.appId.empty()) throw Error(Errc::MissingAppId, "appId is missing");
    if (trimWhitespace(tenant.certificatePem).empty()) throw Error(Errc::MissingPem, "certificatePem is missing");
    if (trimWhitespace(tenant.privateKeyPem).empty()) throw Error(Errc::MissingPem, "privateKeyPem is missing");
    if (trimWhitespace(tenant.serverUrl).empty()) {
        throw Error(Errc::MissingServerUrl, "serverUrl is missing (the Node SDK's imfServiceUrl)");
    }
}

inline FetchSpec fetchSpecOf(const CertificateCredentials& tenant, const FlowContext& flow) {
    const SystemTime now = flow.now;
    const auto serverUrl = normalizeServerUrl(tenant.serverUrl);
    if (!serverUrl) throw Error(Errc::MissingServerUrl, "serverUrl is not an absolute http(s) URL with a host");
    const ClientCertificate certificate(tenant.certificatePem, tenant.privateKeyPem);
    FetchSpec spec;
    spec.url = mcaTokenUrl(*serverUrl, tenant.appId);
    spec.body.buffer() = std::string(kClientCredentialsForm) + "&client_id=" + formEncode(certificate.commonName());
    spec.authorization = SecretString("IMFCert " + certificate.signedAssertion(now));
    spec.redactions.push_back(spec.authorization);
    spec.label = tenantLabel(tenant.appId, "certificate CN", certificate.commonName());
    spec.identity = identityCopy(tenant);
    spec.sealingSecret = sealingSecretOf(tenant);
    return spec;
}

// --- Any OAuth 2.0 server: the client authentication methods ---------------------------------

inline FetchSpec fetchSpecOf(const OAuthCredentials& tenant, const FlowContext& flow) {
    const std::string tokenUrl(trimWhitespace(tenant.tokenUrl));
    FetchSpec spec;
    if (!tokenUrl.empty()) {
        if (!normalizeServerUrl(tokenUrl)) {
            throw Error(Errc::MissingServerUrl, "tokenUrl is not an absolute http(s) URL with a host");
        }
        spec.url = tokenUrl;
    } else {
        spec.issuer = std::string(trimWhitespace(tenant.issuer));
    }
    spec.authMethod = authMethodName(tenant.authMethod);
    const auto state = flow.oauthStates.of(flow.key, tenant);  // the key is read here, once per tenant
    const std::string parameters = oauthForm(tenant);
    const std::string form = parameters + "&client_id=" + formEncode(tenant.clientId);  // all but Basic
    switch (tenant.authMethod) {
        case ClientAuthMethod::SecretBasic:
            spec.body.buffer() = parameters;
            spec.authorization = oauthBasicAuthorization(tenant.clientId, tenant.secret);
            spec.redactions.push_back(spec.authorization);
            spec.redactions.emplace_back(tenant.secret);
            break;
        case ClientAuthMethod::SecretPost: {
            SecretString encodedSecret = formEncodeSecret(tenant.secret);
            spec.body.buffer() = form;
            spec.body.buffer().append("&client_secret=").append(encodedSecret.view());
            spec.redactions.push_back(std::move(encodedSecret));
            spec.redactions.emplace_back(tenant.secret);
            break;
        }
        case ClientAuthMethod::PrivateKeyJwt:
        case ClientAuthMethod::ClientAssertion:
            // A new assertion for every request, retries included (servers refuse a replayed
            // jti); its audience is by default the token endpoint, known only once discovery is done.
            spec.beforeAttempt = [state, form, clientId = tenant.clientId, keyId = tenant.keyId,
                                  audience = tenant.assertionAudience](HttpRequest& request) {
                const SecretString assertion = state->signingKey
                                                   ? SecretString(state->signingKey->clientAssertion(
                                                         clientId, audience.empty() ? request.url : audience, keyId,
                                                         std::chrono::system_clock::now()))
                                                   : state->assertion->read();
                request.body = form;
                request.body.append("&client_assertion_type=")
                    .append(formEncode(kJwtBearerAssertionType))
                    .append("&client_assertion=")
                    .append(formEncode(assertion.view()));
                request.redactions.push_back(assertion);
            };
            break;
        case ClientAuthMethod::TlsClientAuth:
            spec.body.buffer() = form;
            spec.clientCertificatePem = tenant.certificatePem;
            spec.clientKeyPem = SecretString(tenant.privateKeyPem);
            spec.beforeAttempt = [](HttpRequest& request) {
                if (isPlainHttp(request.url)) {
                    throw Error(Errc::InvalidConfiguration,
                                "tls_client_auth needs an https token endpoint, not " + request.url);
                }
            };
            break;
    }
    spec.label = tenantLabel("", "clientId", tenant.clientId);
    spec.identity = identityCopy(tenant);
    spec.sealingSecret = sealingSecretOf(tenant);
    return spec;
}

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
