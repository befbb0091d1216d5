#pragma once

/// @file auth_client.hpp
/// @brief mca-oauth: `Authorization` headers for services protected by IBM Mobile Client Access
/// (MCA) and App ID, from OAuth client-credentials tokens that are cached, refreshed ahead of
/// expiry and fetched by one background engine thread per client.
///
/// This is the one header a user includes. Requires C++17, libcurl, OpenSSL 3 and nlohmann/json.

#include "error.hpp"
#include "policy.hpp"
#include "token_store.hpp"
#include "version.hpp"

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN

/// @brief One tenant's credentials for the secret flow (MCA), or for App ID or any OAuth 2.0
/// client-credentials server when `tokenUrl` is set.
struct Credentials {
    std::string appId;  ///< tenant id (Bluemix application GUID); optional when `tokenUrl` is set
    std::string clientId;
    std::string secret;
    std::string serverUrl;  ///< e.g. https://imf-authserver.ng.bluemix.net/imf-authserver
    /// The full token endpoint, used instead of the MCA path when set (App ID:
    /// `{oauthServerUrl}/token`). The client id and secret are then form-encoded before Basic
    /// encoding, as RFC 6749 §2.3.1 asks; `serverUrl` is not needed.
    std::string tokenUrl{};  // (braces: aggregate initialisation may leave the new fields out)
    std::string scope{};     ///< sent as the form's `scope` when not empty
};

/// @brief One tenant's credentials for the certificate flow (the Node SDK's
/// getAuthorizationHeaderByCertificate): the clientId is the certificate subject's CN.
struct CertificateCredentials {
    std::string appId;
    std::string certificatePem;  ///< the client certificate (PEM)
    std::string privateKeyPem;   ///< its unencrypted RSA private key (PEM)
    std::string serverUrl;       ///< the MCA server, as the Node SDK's `imfServiceUrl`
};

/// @brief How a client authenticates at an OAuth 2.0 token endpoint.
enum class ClientAuthMethod {
    /// client_secret_basic (RFC 6749 §2.3.1): the id and secret form-encoded, then HTTP Basic.
    SecretBasic,
    /// client_secret_post: `client_id` and `client_secret` in the form body, no Authorization header.
    SecretPost,
    /// private_key_jwt (RFC 7523, OpenID Connect Core §9): a fresh signed assertion per request.
    PrivateKeyJwt,
    /// tls_client_auth (RFC 8705 §2): the client certificate in the TLS handshake.
    TlsClientAuth,
    /// A ready assertion read from a file (workload identity, e.g. a Kubernetes projected
    /// service-account token), sent with the same form fields as PrivateKeyJwt.
    ClientAssertion,
};

/// @brief One client of any OAuth 2.0 authorization server (client credentials grant): Keycloak,
/// Microsoft Entra ID, Auth0, Okta, Amazon Cognito, App ID, Ory Hydra, Spring Authorization
/// Server... Name the type when brace-initialising (`mca::OAuthCredentials{...}`) and set
/// fields by name.
struct OAuthCredentials {
    std::string clientId;
    std::string tokenUrl;  ///< the token endpoint; or leave it empty and set `issuer`
    /// Discovery (when `tokenUrl` is empty): RFC 8414 metadata, then OpenID Connect Discovery.
    /// The document must name exactly this issuer; it is cached per issuer for hours.
    std::string issuer;
    ClientAuthMethod authMethod = ClientAuthMethod::SecretBasic;
    std::string secret;  ///< SecretBasic, SecretPost
    /// PrivateKeyJwt: the RSA (2048 bits or more) or EC P-256 signing key; TlsClientAuth: the
    /// client certificate's key. Unencrypted PEM.
    std::string privateKeyPem;
    /// TlsClientAuth: the client certificate (chain), PEM; PrivateKeyJwt: optional, adds the
    /// `x5t#S256` header.
    std::string certificatePem;
    std::string keyId;       ///< PrivateKeyJwt: the `kid` header, when set
    std::string signingAlg;  ///< PrivateKeyJwt: "RS256" (the RSA default), "PS256", "ES256" (the EC default)
    /// ClientAssertion: path of the assertion file, re-read when it changes.
    std::string assertionFile;
    std::string scope;                   ///< the `scope` form field, when set
    std::vector<std::string> resources;  ///< RFC 8707: one `resource` form field each
    std::string audience;                ///< an `audience` form field, when set (Auth0 and others)
    /// Any other form fields; `grant_type`, `client_id`, `client_secret`, `client_assertion` and
    /// `client_assertion_type` are reserved (Errc::InvalidConfiguration).
    std::vector<std::pair<std::string, std::string>> extraParameters;
    /// PrivateKeyJwt: the assertion's `aud`; empty = the token endpoint URL, which Okta, Entra ID
    /// and Keycloak expect. Auth0 expects its tenant URL, "https://{domain}/".
    std::string assertionAudience{};
};

/// @brief Certificate credentials the Node SDK's way: `imf_certificate/public-certificate.pem` and
/// `imf_certificate/private-key.pem` under `directory`, and the server URL from the environment
/// variable `imfServiceUrl`.
/// @throws mca::Error MissingPem when a file cannot be read. A missing `imfServiceUrl` leaves
/// `serverUrl` empty, reported by `getAuthorizationHeader` as MissingServerUrl.
CertificateCredentials certificateCredentialsFromDirectory(const std::string& directory, std::string appId);

/// @brief Time as the client sees it; inject one (see `Options::clock`) to test expiry without sleeping.
class Clock {
  public:
    virtual ~Clock() = default;
    /// Monotonic time: token lifetimes and refresh windows are measured on it.
    virtual std::chrono::steady_clock::time_point steadyNow() const = 0;
    /// Wall-clock time: only to read a JWT `exp` claim when the reply has no `Date` header, and
    /// to timestamp the certificate flow's assertion.
    virtual std::chrono::system_clock::time_point systemNow() const = 0;
};

enum class LogLevel { Debug, Info, Warning, Error };

/// @brief Receives the client's log lines; they never contain a secret or a whole token. Called
/// from callers' threads, the client's engine thread, its store thread (with a shared store) and
/// the thread that destroys the client: it must be thread-safe and must not block.
using LogHandler = std::function<void(LogLevel level, std::string_view message)>;

/// @brief Client configuration: a plain aggregate, set fields by name.
struct Options {
    std::size_t cacheSize = 100;  ///< most tokens kept (LRU); 0 disables caching
    /// Default credentials, used by `getAuthorizationHeader()`. Each empty one is taken from the
    /// Cloud Foundry environment as the Node SDK does: VCAP_SERVICES' first `AdvancedMobileAccess*`
    /// or `AppID*` binding (`tenantId`, `clientId`, `secret`, `serverUrl`; an App ID binding's
    /// `oauthServerUrl` gives `tokenUrl`), then VCAP_APPLICATION's `application_id` for the appId.
    std::string appId, clientId, secret, serverUrl;
    /// PEM CA bundle path for HTTPS: the only CAs trusted (it replaces the system trust store,
    /// libcurl's compiled-in CA directory included); empty = the system trust store.
    std::string caInfo;
    /// Budget for one fetch: shared store, lease wait and retries included. Any value is accepted:
    /// negative ones count as 0, and ones above 1 hour as 1 hour.
    std::chrono::milliseconds timeout{10000};
    std::shared_ptr<const Clock> clock;  ///< null = the real clocks
    std::string tokenUrl, scope;         ///< default credentials' token endpoint and scope (see Credentials)
    /// Default credentials of any OAuth 2.0 server, instead of the fields above: when set,
    /// `getAuthorizationHeader()` uses them, and setting `appId`, `clientId`, `secret`,
    /// `serverUrl`, `tokenUrl` or `scope` as well is an `Errc::InvalidConfiguration` (VCAP_* is
    /// not read).
    std::optional<OAuthCredentials> oauth;
    /// Proxy URL for token requests, e.g. "http://proxy.internal:3128" (credentials may be in the
    /// URL). Empty = libcurl's environment variables: http_proxy, https_proxy, no_proxy.
    std::string proxy;
    LogHandler log;  ///< null = silent
    /// A token cache shared by the instances of a fleet (e.g. `mca::RedisTokenStore`), consulted
    /// on a local miss before the auth server; null = process-local only.
    std::shared_ptr<TokenStore> sharedStore;
    RetryOptions retry;  ///< retries, fail-fast and refresh backoff (see <mca/policy.hpp>)
    FleetOptions fleet;  ///< lease length and the budget shares of the store (with `sharedStore`)
    /// Connections open at once to one host and port (the auth server, or the proxy) at most;
    /// further token requests wait for a free one, still within `timeout`. 0 = no limit.
    std::size_t maxConnectionsPerHost = 64;
    /// Allow plain `http://` token endpoints on hosts other than loopback (127.0.0.0/8, ::1,
    /// localhost), where the secret would travel in clear. Off: such a request fails at once with
    /// `Errc::MissingServerUrl` and nothing is sent.
    bool allowInsecureHttp = false;
};

/// @brief Counters since the client was created, and its state now.
struct Stats {
    std::uint64_t hits = 0;        ///< calls answered from the cache
    std::uint64_t misses = 0;      ///< calls that found no valid token (they waited or failed fast)
    std::uint64_t fetches = 0;     ///< token requests started, refreshes included
    std::uint64_t refreshes = 0;   ///< of those, background refreshes ahead of expiry
    std::uint64_t failures = 0;    ///< fetches that ended in an error
    std::uint64_t evictions = 0;   ///< tokens dropped to stay within `cacheSize`
    std::uint64_t storeHits = 0;   ///< local misses answered by the shared store, not the auth server
    std::size_t inFlight = 0;      ///< fetches in flight now
    std::size_t cachedTokens = 0;  ///< tokens cached now
};

/// @brief Completion handler of the callback API: exactly one of `header` (non-empty) and `error`
/// (an `mca::Error`) is set. It runs inline on a cache hit or an immediate failure; otherwise on
/// the client's engine thread, on its store thread (a token taken from the shared store), or on
/// the thread destroying the client (`Shutdown`). It must not block, and should not throw (an
/// exception it throws is dropped). It may destroy the client.
using HeaderHandler = std::function<void(std::string header, std::exception_ptr error)>;

namespace detail {
struct TenantRecord;
}

/// @brief A tenant resolved once for hot paths: `AuthClient::tenant(credentials)` validates the
/// credentials and computes their cache key, so that a call with the handle costs a lookup and
/// a copy, whatever the size of the credentials (a certificate and its key, for example). Cheap
/// to copy and thread-safe to share; it holds a copy of the credentials (secrets wiped when the
/// last copy goes). Usable with any `AuthClient` of the process. A default-constructed handle
/// fails every call with `MissingClientId`.
class Tenant {
  public:
    Tenant() = default;

  private:
    friend class AuthClient;
    explicit Tenant(std::shared_ptr<const detail::TenantRecord> record) : record_(std::move(record)) {}
    std::shared_ptr<const detail::TenantRecord> record_;
};

/// @brief Hands out `"Bearer <access_token>"` headers for MCA-protected requests.
///
/// Thread safety: every member function may be called from any number of threads at once,
/// except the destructor, which must not overlap with other calls.
///
/// Each client owns one background thread that performs all token requests (libcurl multi
/// interface, connections kept alive). Cache hits never touch that thread.
class AuthClient {
  public:
    /// @brief Reads the default credentials (falling back to VCAP_*) and starts the engine thread.
    /// Missing default credentials are not an error here: `getAuthorizationHeader()` reports them.
    /// @throws std::runtime_error only if libcurl cannot be initialised.
    explicit AuthClient(Options options = {});

    /// @brief Stops the engine: pending futures receive `Errc::Shutdown`. Never hangs. May run on
    /// one of the client's own threads (a handler dropping the last reference): the client is
    /// then taken apart on a thread of its own.
    ~AuthClient();

    AuthClient(AuthClient&&) noexcept;
    AuthClient& operator=(AuthClient&&) noexcept;
    AuthClient(const AuthClient&) = delete;
    AuthClient& operator=(const AuthClient&) = delete;

    /// @brief The header for the default credentials (see `Options`).
    /// Never throws: every failure arrives as an `mca::Error` inside the future.
    std::future<std::string> getAuthorizationHeader();

    /// @brief The header for any tenant. Tokens are cached per endpoint, appId, clientId, scope
    /// and a digest of the secret. Never throws: failures arrive as an `mca::Error` in the future.
    std::future<std::string> getAuthorizationHeader(const Credentials& tenant);

    /// @brief The header for a tenant of the certificate flow, cached per server, appId and a
    /// digest of the certificate and key. Never throws.
    std::future<std::string> getAuthorizationHeader(const CertificateCredentials& tenant);

    /// @brief The header for a client of any OAuth 2.0 server, cached per endpoint or issuer,
    /// clientId, method, a digest of its secret, key, certificate or assertion path, and every
    /// form field it sends. Never throws.
    std::future<std::string> getAuthorizationHeader(const OAuthCredentials& tenant);

    /// @brief Callback forms of the calls above, for event loops that must not block on a
    /// future: `done` receives the header or the error (see `HeaderHandler` for the thread).
    void getAuthorizationHeader(HeaderHandler done);
    void getAuthorizationHeader(const Credentials& tenant, HeaderHandler done);
    void getAuthorizationHeader(const CertificateCredentials& tenant, HeaderHandler done);
    void getAuthorizationHeader(const OAuthCredentials& tenant, HeaderHandler done);

    /// @brief A handle for calls on hot paths (see `Tenant`). Never throws for bad credentials:
    /// calls with the handle report them.
    Tenant tenant(const Credentials& credentials) const;
    Tenant tenant(const CertificateCredentials& credentials) const;
    Tenant tenant(const OAuthCredentials& credentials) const;

    /// @brief The header for a resolved tenant: the same as the call with its credentials. Never throws.
    std::future<std::string> getAuthorizationHeader(const Tenant& tenant);
    void getAuthorizationHeader(const Tenant& tenant, HeaderHandler done);

    /// @brief Retires the tenant's cached token (e.g. after the protected service answered 401):
    /// the next call fetches a new one. With a shared store the token is retired fleet-wide: it
    /// is deleted from the store (if it is still the one stored) and never taken back from it.
    /// Callers already waiting on a fetch keep waiting on it.
    void invalidate(const Credentials& tenant);
    void invalidate(const CertificateCredentials& tenant);
    void invalidate(const OAuthCredentials& tenant);
    void invalidate(const Tenant& tenant);

    /// @brief Compare-and-invalidate: retires the token only while it is still `refusedHeader`
    /// (the header the protected service refused). When a hundred requests in flight are refused
    /// with the same token, their hundred calls cause one new fetch, not a hundred.
    void invalidate(const Credentials& tenant, std::string_view refusedHeader);
    void invalidate(const CertificateCredentials& tenant, std::string_view refusedHeader);
    void invalidate(const OAuthCredentials& tenant, std::string_view refusedHeader);
    void invalidate(const Tenant& tenant, std::string_view refusedHeader);

    /// @brief Counters and current state.
    Stats stats() const noexcept;

    /// @brief Number of tokens currently cached.
    std::size_t cachedTokens() const noexcept;

  private:
    struct Impl;
    static void destroy(std::unique_ptr<Impl> impl) noexcept;
    std::unique_ptr<Impl> impl_;
};

/// @brief Propagation (the Node SDK's getAuthorizationHeaderFromIncomingRequest, made strict):
/// returns an incoming request's Authorization value for forwarding downstream when it has the
/// form `Bearer <access token> [<id token>]` (runs of spaces folded to one), nullopt otherwise
/// (another scheme, a malformed token, control characters).
std::optional<std::string> forwardableAuthorization(std::string_view incoming);

MCA_OAUTH_NAMESPACE_END

// The implementation: here when header-only, in the one translation unit that includes
// <mca/src.hpp> under MCA_OAUTH_SEPARATE_COMPILATION (see version.hpp).
#ifndef MCA_OAUTH_SEPARATE_COMPILATION
#include "detail/client.hpp"
#endif
