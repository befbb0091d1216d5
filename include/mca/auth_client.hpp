#pragma once

/// @file auth_client.hpp
/// @brief mca-oauth: `Authorization` headers for services protected by IBM Mobile Client Access
/// (MCA) and App ID, from OAuth client-credentials tokens that are cached, refreshed ahead of
/// expiry and fetched by one background engine thread per client.
///
/// This is the one header a user includes. Requires C++17, libcurl, OpenSSL 3 and nlohmann/json.

#include "error.hpp"
#include "version.hpp"

#include "detail/http_engine.hpp"
#include "detail/secret.hpp"
#include "detail/token_cache.hpp"
#include "detail/token_reply.hpp"
#include "detail/token_request.hpp"
#include "detail/vcap.hpp"

#include <chrono>
#include <cstdlib>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>

namespace mca {

/// @brief One tenant's credentials for the MCA secret flow.
struct Credentials {
    std::string appId;  ///< tenant id (Bluemix application GUID)
    std::string clientId;
    std::string secret;
    std::string serverUrl;  ///< e.g. https://imf-authserver.ng.bluemix.net/imf-authserver
};

/// @brief Time as the client sees it; inject one (see `Options::clock`) to test expiry without sleeping.
class Clock {
  public:
    virtual ~Clock() = default;
    /// Monotonic time: token lifetimes and refresh windows are measured on it.
    virtual std::chrono::steady_clock::time_point steadyNow() const = 0;
    /// Wall-clock time: only to read a JWT `exp` claim when the reply has no `Date` header.
    virtual std::chrono::system_clock::time_point systemNow() const = 0;
};

/// @brief Client configuration: a plain aggregate, set fields by name.
struct Options {
    std::size_t cacheSize = 100;  ///< most tokens kept (LRU); 0 disables caching
    /// Default credentials, used by `getAuthorizationHeader()`. Each empty one is taken from the
    /// Cloud Foundry environment as the Node SDK does: VCAP_SERVICES' first `AdvancedMobileAccess*`
    /// or `AppID*` binding (`tenantId`, `clientId`, `secret`, `serverUrl`), then
    /// VCAP_APPLICATION's `application_id` for the appId.
    std::string appId, clientId, secret, serverUrl;
    std::string caInfo;                        ///< PEM CA bundle path; empty = system trust store
    std::chrono::milliseconds timeout{10000};  ///< budget for one fetch, retries included
    std::shared_ptr<const Clock> clock;        ///< null = the real clocks
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

    /// @brief Stops the engine: pending futures receive `Errc::Shutdown`. Never hangs.
    ~AuthClient();

    AuthClient(AuthClient&&) noexcept;
    AuthClient& operator=(AuthClient&&) noexcept;
    AuthClient(const AuthClient&) = delete;
    AuthClient& operator=(const AuthClient&) = delete;

    /// @brief The header for the default credentials (see `Options`).
    /// Never throws: every failure arrives as an `mca::Error` inside the future.
    std::future<std::string> getAuthorizationHeader();

    /// @brief The header for any tenant. Tokens are cached per server URL, appId, clientId and
    /// a digest of the secret. Never throws: failures arrive as an `mca::Error` in the future.
    std::future<std::string> getAuthorizationHeader(const Credentials& tenant);

    /// @brief Number of tokens currently cached.
    std::size_t cachedTokens() const noexcept;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Implementation

namespace detail {

/// A tenant checked and reduced to what a fetch needs; the secret lives only here.
struct Tenant {
    std::string appId, clientId, serverUrl;  // serverUrl normalized (trimmed, ends in '/')
    SecretString secret;
    CacheKey key{};
};

/// Throws the Missing* error for the first empty field, in the Node SDK's order.
inline void requireCredentials(const std::string& appId, const std::string& clientId, const std::string& secret,
                               const std::string& serverUrl, const char* origin) {
    if (appId.empty()) throw Error(Errc::MissingAppId, std::string("appId is missing") + origin);
    if (clientId.empty()) throw Error(Errc::MissingClientId, std::string("clientId is missing") + origin);
    if (secret.empty()) throw Error(Errc::MissingSecret, std::string("secret is missing") + origin);
    if (trimWhitespace(serverUrl).empty())
        throw Error(Errc::MissingServerUrl, std::string("serverUrl is missing") + origin);
}

/// The cache key of a secret-flow tenant: a digest over the server URL (trimmed, without a
/// trailing '/'), appId, clientId and secret. Cheap and allocation-free after a thread's first
/// call, since a cache hit computes it.
inline CacheKey secretFlowKey(std::string_view serverUrl, std::string_view appId, std::string_view clientId,
                              std::string_view secret) {
    serverUrl = trimWhitespace(serverUrl);
    if (!serverUrl.empty() && serverUrl.back() == '/') serverUrl.remove_suffix(1);
    return KeyedDigest::forThisThread()
        .field("mca-secret-flow")
        .field(serverUrl)
        .field(appId)
        .field(clientId)
        .field(secret)
        .finish();
}

/// Validates the server URL and copies what a fetch needs (a cache miss only).
inline Tenant makeTenant(const std::string& appId, const std::string& clientId, const std::string& secret,
                         const std::string& serverUrl, const CacheKey& key) {
    auto normalized = normalizeServerUrl(serverUrl);
    if (!normalized) {
        throw Error(Errc::MissingServerUrl, "serverUrl is not an absolute http(s) URL with a host");
    }
    return Tenant{appId, clientId, std::move(*normalized), SecretString(secret), key};
}

class SystemClock final : public Clock {
  public:
    std::chrono::steady_clock::time_point steadyNow() const override { return std::chrono::steady_clock::now(); }
    std::chrono::system_clock::time_point systemNow() const override { return std::chrono::system_clock::now(); }
};

}  // namespace detail

struct AuthClient::Impl {
    explicit Impl(Options options)
        : clock(options.clock ? std::move(options.clock) : std::make_shared<detail::SystemClock>()),
          caInfo(std::move(options.caInfo)),
          timeout(options.timeout),
          cache(options.cacheSize) {
        const detail::SecretString secret(options.secret);
        detail::wipeString(options.secret);
        resolveDefaults(options, secret);
    }

    ~Impl() {
        engine.stop();  // fails in-flight fetches (and their waiters) with Shutdown
        const Error shutdown(Errc::Shutdown, "the AuthClient was destroyed");
        for (auto& waiter : cache.clear()) waiter.set_exception(std::make_exception_ptr(shutdown));
    }

    void resolveDefaults(const Options& options, const detail::SecretString& secret) {
        const char* services = std::getenv("VCAP_SERVICES");
        const char* application = std::getenv("VCAP_APPLICATION");
        detail::VcapCredentials vcap = detail::parseVcap(services, application);
        const auto pick = [](const std::string& given, std::string& fromVcap) -> const std::string& {
            return given.empty() ? fromVcap : given;
        };
        const std::string origin = std::string(" (not in Options, nor in VCAP_SERVICES / VCAP_APPLICATION") +
                                   (vcap.problem.empty() ? "" : ": " + vcap.problem) + ")";
        const std::string& appId = pick(options.appId, vcap.appId);
        const std::string& clientId = pick(options.clientId, vcap.clientId);
        const std::string& serverUrl = pick(options.serverUrl, vcap.serverUrl);
        const std::string& secretValue = secret.empty() ? vcap.secret : secret.view();
        try {
            detail::requireCredentials(appId, clientId, secretValue, serverUrl, origin.c_str());
            defaultTenant = detail::makeTenant(appId, clientId, secretValue, serverUrl,
                                               detail::secretFlowKey(serverUrl, appId, clientId, secretValue));
        } catch (const Error&) {
            defaultError = std::current_exception();
        }
        detail::wipeString(vcap.secret);
    }

    /// The hit path: a ready future when the key holds a token that is not due for refresh.
    std::optional<std::future<std::string>> tryHit(const detail::CacheKey& key, detail::SteadyTime now) {
        std::string header;
        if (!cache.tryHit(key, now, header)) return std::nullopt;
        detail::TokenCache::Waiter ready;
        ready.set_value(std::move(header));
        return ready.get_future();
    }

    std::future<std::string> acquire(const detail::Tenant& tenant, detail::SteadyTime now) {
        detail::TokenCache::Waiter waiter;
        auto future = waiter.get_future();
        std::string header;
        std::exception_ptr failure;
        switch (cache.acquire(tenant.key, now, header, waiter, failure)) {
            case detail::TokenCache::Acquired::Hit:
                waiter.set_value(std::move(header));
                break;
            case detail::TokenCache::Acquired::HitRefresh:
                waiter.set_value(std::move(header));
                startFetch(tenant);
                break;
            case detail::TokenCache::Acquired::Fetch:
                startFetch(tenant);
                break;
            case detail::TokenCache::Acquired::Joined:
                break;
            case detail::TokenCache::Acquired::Failed:
                waiter.set_exception(std::move(failure));
                break;
        }
        return future;
    }

    void startFetch(const detail::Tenant& tenant) {
        detail::HttpRequest request;
        request.url = detail::mcaTokenUrl(tenant.serverUrl, tenant.appId);
        request.body = std::string(detail::kClientCredentialsForm);
        request.authorization = detail::basicAuthorization(tenant.clientId, tenant.secret.view());
        request.caInfo = caInfo;
        request.redactions.push_back(tenant.secret);
        request.redactions.push_back(request.authorization);
        request.deadline = std::chrono::steady_clock::now() + timeout;
        std::string target = request.url;
        engine.submit(std::move(request), [this, key = tenant.key, target = std::move(target), secret = tenant.secret](
                                              detail::HttpReply* reply, std::exception_ptr error) {
            complete(key, target, secret, reply, std::move(error));
        });
    }

    // Runs on the engine thread (or inline after shutdown): turns the reply into a token or an
    // error, updates the cache and completes every waiter of the key.
    void complete(const detail::CacheKey& key, const std::string& target, const detail::SecretString& secret,
                  detail::HttpReply* reply, std::exception_ptr error) {
        const auto now = clock->steadyNow();
        if (!error && reply->status != 200) {
            std::string description = detail::describeErrorBody(reply->body);
            detail::redact(description, secret.view());
            error = std::make_exception_ptr(Error(Errc::TokenGenerate,
                                                  "token request to " + target + " failed with HTTP " +
                                                      std::to_string(reply->status) + ": " + description,
                                                  static_cast<int>(reply->status)));
        }
        if (!error) {
            try {
                const detail::TokenReply parsed = detail::parseTokenReply(reply->body);
                const auto lifetime = detail::tokenLifetime(parsed, reply->date, clock->systemNow());
                const std::string header = "Bearer " + parsed.accessToken;
                for (auto& waiter : cache.completeWithToken(key, header, lifetime, now, jitter(random))) {
                    waiter.set_value(header);
                }
                return;
            } catch (const detail::InvalidReply& invalid) {
                error = std::make_exception_ptr(
                    Error(Errc::InvalidResponse, std::string(invalid.what()) + " (from " + target + ")", 200));
            }
        }
        for (auto& waiter : cache.completeWithError(key, now, error, jitter(random))) waiter.set_exception(error);
    }

    std::shared_ptr<const Clock> clock;
    std::string caInfo;
    std::chrono::milliseconds timeout;
    detail::Tenant defaultTenant;
    std::exception_ptr defaultError;  // why the default credentials are unusable, if they are
    detail::TokenCache cache;
    std::minstd_rand random{std::random_device{}()};  // engine thread only
    std::uniform_real_distribution<double> jitter{0.0, 1.0};
    detail::HttpEngine engine;  // last: its thread starts once everything above exists
};

inline AuthClient::AuthClient(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

inline AuthClient::~AuthClient() = default;
inline AuthClient::AuthClient(AuthClient&&) noexcept = default;
inline AuthClient& AuthClient::operator=(AuthClient&&) noexcept = default;

namespace detail {
inline std::future<std::string> failedFuture(std::exception_ptr error) {
    std::promise<std::string> failed;
    failed.set_exception(std::move(error));
    return failed.get_future();
}
}  // namespace detail

inline std::future<std::string> AuthClient::getAuthorizationHeader() {
    if (impl_->defaultError) return detail::failedFuture(impl_->defaultError);
    try {
        const auto now = impl_->clock->steadyNow();
        if (auto hit = impl_->tryHit(impl_->defaultTenant.key, now)) return std::move(*hit);
        return impl_->acquire(impl_->defaultTenant, now);
    } catch (...) {
        return detail::failedFuture(std::current_exception());
    }
}

inline std::future<std::string> AuthClient::getAuthorizationHeader(const Credentials& tenant) {
    try {
        detail::requireCredentials(tenant.appId, tenant.clientId, tenant.secret, tenant.serverUrl, "");
        const auto key = detail::secretFlowKey(tenant.serverUrl, tenant.appId, tenant.clientId, tenant.secret);
        const auto now = impl_->clock->steadyNow();
        if (auto hit = impl_->tryHit(key, now)) return std::move(*hit);
        return impl_->acquire(detail::makeTenant(tenant.appId, tenant.clientId, tenant.secret, tenant.serverUrl, key),
                              now);
    } catch (...) {
        return detail::failedFuture(std::current_exception());
    }
}

inline std::size_t AuthClient::cachedTokens() const noexcept { return impl_->cache.size(); }

}  // namespace mca
