#pragma once

// The implementation behind mca::AuthClient: the call path (cache hit, single flight, fail fast,
// refresh ahead), tenant handles, the counters and the API glue. Included at the end of
// <mca/auth_client.hpp>. One fetch's whole life is in fetch.hpp, the fleet protocol in
// fleet.hpp, every retry and backoff rule in retry_policy.hpp, the token flows in flows.hpp.

#include "../auth_client.hpp"
#include "../version.hpp"
#include "counters.hpp"
#include "fetch.hpp"
#include "fleet.hpp"
#include "flows.hpp"
#include "http_engine.hpp"
#include "log.hpp"
#include "metadata_cache.hpp"
#include "oauth_flow.hpp"
#include "retry_policy.hpp"
#include "secret.hpp"
#include "token_cache.hpp"
#include "vcap.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

class SystemClock final : public Clock {
  public:
    std::chrono::steady_clock::time_point steadyNow() const override { return std::chrono::steady_clock::now(); }
    std::chrono::system_clock::time_point systemNow() const override { return std::chrono::system_clock::now(); }
};

inline std::future<std::string> failedFuture(std::exception_ptr error) {
    std::promise<std::string> failed;
    failed.set_exception(std::move(error));
    return failed.get_future();
}

/// A tenant resolved once (see mca::Tenant): a copy of its credentials, their cache key, or
/// why they cannot be used.
struct TenantRecord {
    std::variant<Credentials, CertificateCredentials, OAuthCredentials> credentials;
    CacheKey key{};
    std::exception_ptr error;  // set: every call with the record fails with it

    TenantRecord() = default;
    TenantRecord(const TenantRecord&) = delete;
    TenantRecord& operator=(const TenantRecord&) = delete;
    ~TenantRecord() {
        if (auto* secretFlow = std::get_if<Credentials>(&credentials)) wipeString(secretFlow->secret);
        if (auto* certificateFlow = std::get_if<CertificateCredentials>(&credentials)) {
            wipeString(certificateFlow->privateKeyPem);
        }
        if (auto* oauth = std::get_if<OAuthCredentials>(&credentials)) {
            wipeString(oauth->secret);
            wipeString(oauth->privateKeyPem);
        }
    }

    FetchSpec fetchSpec(const FlowContext& flow) const {
        return std::visit([&flow](const auto& tenant) { return fetchSpecOf(tenant, flow); }, credentials);
    }
};

template <class TenantCredentials>
std::shared_ptr<const TenantRecord> resolveTenant(const TenantCredentials& tenant, const char* origin = "") {
    auto record = std::make_shared<TenantRecord>();
    record->credentials = tenant;
    try {
        requireCredentials(tenant, origin);
        record->key = cacheKeyOf(tenant);
    } catch (const Error&) {
        record->error = std::current_exception();
    }
    return record;
}

}  // namespace detail

struct AuthClient::Impl {
    explicit Impl(Options options)
        : clock(options.clock ? std::move(options.clock) : std::make_shared<detail::SystemClock>()),
          policy(options.retry, options.fleet, options.timeout),
          log(std::move(options.log)),
          cache(options.cacheSize, policy),
          defaults(resolveDefaults(options)),
          fleet(options.sharedStore ? std::make_unique<detail::Fleet>(std::move(options.sharedStore), policy, log)
                                    : nullptr),
          engine(
              policy,
              [this](const detail::HttpRequest& request, unsigned attempt, std::chrono::milliseconds delay,
                     const std::string& reason) {
                  log(LogLevel::Debug, "attempt " + std::to_string(attempt) + " to " + request.url + " failed (" +
                                           reason + "); retrying in " + std::to_string(delay.count()) + " ms");
              },
              options.maxConnectionsPerHost),
          discovery(engine, *clock, transportOf(options)),
          oauthStates(options.cacheSize),
          context{*clock,    policy,     cache, counters, engine, fleet.get(), log, transportOf(options),
                  discovery, oauthStates} {
        detail::wipeString(options.secret);
        if (options.oauth) {
            detail::wipeString(options.oauth->secret);
            detail::wipeString(options.oauth->privateKeyPem);
        }
    }

    ~Impl() {
        engine.stop();  // in-flight fetches end with Shutdown, failing their waiters
        // Then the store thread: leases held go back, tokens fetched are published, lookups
        // still queued are dropped (their fetches fail their waiters with Shutdown).
        if (fleet) fleet->stop();
        const auto shutdown = detail::abandonedFetchError();
        for (auto& waiter : cache.clear()) waiter.fail(shutdown);
    }

    /// Whether the calling thread is one of the client's own (a handler running on it may be
    /// destroying the client).
    bool runsOnThisThread() const noexcept {
        const auto self = std::this_thread::get_id();
        return self == engine.threadId() || (fleet && self == fleet->threadId());
    }

    /// The default credentials: the explicit options as a whole, or else one binding of the
    /// environment (see detail::defaultCredentials).
    static std::shared_ptr<const detail::TenantRecord> resolveDefaults(const Options& options) {
        if (options.oauth) {
            if (!options.appId.empty() || !options.clientId.empty() || !options.secret.empty() ||
                !options.serverUrl.empty() || !options.tokenUrl.empty() || !options.scope.empty()) {
                auto record = std::make_shared<detail::TenantRecord>();
                record->error =
                    std::make_exception_ptr(Error(Errc::InvalidConfiguration,
                                                  "Options::oauth is set, and so are the Node SDK's credential "
                                                  "fields (appId, clientId, secret, serverUrl, tokenUrl, scope): "
                                                  "set one or the other"));
                return record;
            }
            return detail::resolveTenant(*options.oauth, " (Options::oauth)");
        }
        Credentials given{options.appId,     options.clientId, options.secret,
                          options.serverUrl, options.tokenUrl, options.scope};
        const bool explicitly = detail::hasExplicitCredentials(given);
        std::string problem;
        Credentials resolved =
            detail::defaultCredentials(given, std::getenv("VCAP_SERVICES"), std::getenv("VCAP_APPLICATION"), problem);
        detail::wipeString(given.secret);
        const std::string origin =
            explicitly ? std::string(" (Options give credentials, so they are used as given, without VCAP_SERVICES)")
                       : " (not in Options, nor in VCAP_SERVICES / VCAP_APPLICATION" +
                             (problem.empty() ? std::string() : ": " + problem) + ")";
        auto record = detail::resolveTenant(resolved, origin.c_str());
        detail::wipeString(resolved.secret);
        return record;
    }

    static detail::HttpRequest transportOf(const Options& options) {
        detail::HttpRequest transport;
        transport.caInfo = options.caInfo;
        transport.proxy = options.proxy;
        transport.allowInsecureHttp = options.allowInsecureHttp;
        return transport;
    }

    /// The call path shared by every flow and both APIs, after a missed hit. `buildSpec` runs
    /// only when this call has to start a fetch. The waiter is moved from only when it is queued
    /// or completed.
    template <class BuildSpec>
    void serve(const detail::CacheKey& key, detail::Waiter& waiter, const BuildSpec& buildSpec) {
        using Acquired = detail::TokenCache::Acquired;
        std::string header;
        std::string refused;
        std::exception_ptr failure;
        switch (cache.acquire(key, clock->steadyNow(), header, waiter, failure, &refused)) {
            case Acquired::Hit:
                counters.hits.add();
                waiter.succeed(std::move(header));
                break;
            case Acquired::HitRefresh:
                counters.hits.add();
                // The refresh starts before the caller's handler runs: the handler may destroy the client.
                detail::Fetch::start(context, detail::FetchClaim(cache, key), std::move(refused), /*refresh=*/true,
                                     buildSpec);
                waiter.succeed(std::move(header));
                break;
            case Acquired::Fetch:
                counters.misses.fetch_add(1, std::memory_order_relaxed);
                detail::Fetch::start(context, detail::FetchClaim(cache, key), std::move(refused), /*refresh=*/false,
                                     buildSpec);
                break;
            case Acquired::Joined:
                counters.misses.fetch_add(1, std::memory_order_relaxed);
                break;
            case Acquired::Failed:
                counters.misses.fetch_add(1, std::memory_order_relaxed);
                waiter.fail(std::move(failure));
                break;
        }
    }

    /// The future API. A hit returns a ready future at once: one lookup, the header's copy and
    /// the future's shared state, nothing else.
    template <class KeyOf, class BuildSpec>
    std::future<std::string> futureFor(const KeyOf& keyOf, const BuildSpec& buildSpec) {
        try {
            const detail::CacheKey key = keyOf();
            std::string header;
            std::promise<std::string> promise;
            if (cache.tryHit(key, clock->steadyNow(), header)) {
                counters.hits.add();
                promise.set_value(std::move(header));
                return promise.get_future();
            }
            auto future = promise.get_future();
            detail::Waiter waiter(std::move(promise));
            serve(key, waiter, buildSpec);
            return future;
        } catch (...) {  // unusable credentials, or out of memory before the fetch started
            return detail::failedFuture(std::current_exception());
        }
    }

    /// The handler API: every outcome goes to `done`.
    template <class KeyOf, class BuildSpec>
    void handlerFor(HeaderHandler done, const KeyOf& keyOf, const BuildSpec& buildSpec) {
        detail::Waiter waiter(std::move(done));
        try {
            const detail::CacheKey key = keyOf();
            std::string header;
            if (cache.tryHit(key, clock->steadyNow(), header)) {
                counters.hits.add();
                return waiter.succeed(std::move(header));
            }
            serve(key, waiter, buildSpec);
        } catch (...) {  // the waiter is still ours unless it was queued or completed
            waiter.fail(std::current_exception());
        }
    }

    // --- Keys and requests of the three ways to name a tenant ---

    template <class TenantCredentials>
    static auto keyOf(const TenantCredentials& tenant) {
        return [&tenant] {
            detail::requireCredentials(tenant);
            return detail::cacheKeyOf(tenant);
        };
    }
    template <class TenantCredentials>
    static auto specOf(const TenantCredentials& tenant) {
        return [&tenant](const detail::FlowContext& flow) { return detail::fetchSpecOf(tenant, flow); };
    }
    static auto keyOf(const detail::TenantRecord* record) {
        return [record] {
            if (record == nullptr) throw Error(Errc::MissingClientId, "the mca::Tenant handle is empty");
            if (record->error) std::rethrow_exception(record->error);
            return record->key;
        };
    }
    static auto specOf(const detail::TenantRecord* record) {
        return [record](const detail::FlowContext& flow) { return record->fetchSpec(flow); };
    }

    /// The handler form for a resolved tenant: a hit is a lookup and a call, no hashing, no waiter.
    void handlerFor(HeaderHandler done, const detail::TenantRecord* record) {
        if (record != nullptr && !record->error) {
            std::string header;
            if (cache.tryHit(record->key, clock->steadyNow(), header)) {
                counters.hits.add();
                return detail::Waiter::invoke(done, std::move(header), nullptr);
            }
        }
        handlerFor(std::move(done), keyOf(record), specOf(record));
    }

    // --- Invalidation ---

    template <class TenantCredentials>
    void retire(const detail::CacheKey& key, const TenantCredentials& tenant, std::optional<std::string_view> refused) {
        const auto retired = cache.invalidate(key, refused);
        // Fleet-wide: the token this client held, or without a refused header whatever is stored.
        if (!fleet || (refused && !retired)) return;
        auto sealingSecret = detail::sealingSecretOf(tenant);
        if (sealingSecret.empty()) return;  // such tokens are never shared
        fleet->retire(fleet->placeOf(detail::identityCopy(tenant), sealingSecret), retired);
    }

    void retire(const detail::TenantRecord* record, std::optional<std::string_view> refused) {
        if (record == nullptr || record->error) return;
        std::visit([&](const auto& tenant) { retire(record->key, tenant, refused); }, record->credentials);
    }

    std::shared_ptr<const Clock> clock;
    detail::RetryPolicy policy;
    detail::Logger log;
    detail::Counters counters;
    detail::TokenCache cache;
    std::shared_ptr<const detail::TenantRecord> defaults;  // secrets wiped on destruction
    std::unique_ptr<detail::Fleet> fleet;                  // null: process-local only
    detail::HttpEngine engine;                             // its thread starts once everything above exists
    detail::ServerMetadataCache discovery;                 // used by fetches on the engine thread
    detail::OAuthTenantStates oauthStates;
    detail::FetchContext context;
};

/// On one of the client's own threads (a handler that dropped the last reference) the client is
/// taken apart on a thread of its own, since a thread cannot join itself.
MCA_OAUTH_DECL void AuthClient::destroy(std::unique_ptr<Impl> impl) noexcept {
    if (!impl || !impl->runsOnThisThread()) return;  // impl's destructor does the work here
    Impl* doomed = impl.release();
    try {
        std::thread([doomed] { delete doomed; }).detach();
    } catch (...) {  // no thread to spare: leak the client rather than join a thread from itself
    }
}

MCA_OAUTH_DECL AuthClient::AuthClient(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
MCA_OAUTH_DECL AuthClient::~AuthClient() { destroy(std::move(impl_)); }
MCA_OAUTH_DECL AuthClient::AuthClient(AuthClient&&) noexcept = default;
MCA_OAUTH_DECL AuthClient& AuthClient::operator=(AuthClient&& other) noexcept {
    if (this != &other) {
        auto previous = std::move(impl_);
        impl_ = std::move(other.impl_);
        destroy(std::move(previous));
    }
    return *this;
}

MCA_OAUTH_DECL std::future<std::string> AuthClient::getAuthorizationHeader() {
    const detail::TenantRecord* defaults = impl_->defaults.get();  // no reference count touched on a hit
    return impl_->futureFor(Impl::keyOf(defaults), Impl::specOf(defaults));
}

MCA_OAUTH_DECL std::future<std::string> AuthClient::getAuthorizationHeader(const Credentials& tenant) {
    return impl_->futureFor(Impl::keyOf(tenant), Impl::specOf(tenant));
}

MCA_OAUTH_DECL std::future<std::string> AuthClient::getAuthorizationHeader(const CertificateCredentials& tenant) {
    return impl_->futureFor(Impl::keyOf(tenant), Impl::specOf(tenant));
}

MCA_OAUTH_DECL std::future<std::string> AuthClient::getAuthorizationHeader(const OAuthCredentials& tenant) {
    return impl_->futureFor(Impl::keyOf(tenant), Impl::specOf(tenant));
}

MCA_OAUTH_DECL std::future<std::string> AuthClient::getAuthorizationHeader(const Tenant& tenant) {
    const detail::TenantRecord* record = tenant.record_.get();
    return impl_->futureFor(Impl::keyOf(record), Impl::specOf(record));
}

MCA_OAUTH_DECL void AuthClient::getAuthorizationHeader(HeaderHandler done) {
    impl_->handlerFor(std::move(done), impl_->defaults.get());
}

MCA_OAUTH_DECL void AuthClient::getAuthorizationHeader(const Credentials& tenant, HeaderHandler done) {
    impl_->handlerFor(std::move(done), Impl::keyOf(tenant), Impl::specOf(tenant));
}

MCA_OAUTH_DECL void AuthClient::getAuthorizationHeader(const CertificateCredentials& tenant, HeaderHandler done) {
    impl_->handlerFor(std::move(done), Impl::keyOf(tenant), Impl::specOf(tenant));
}

MCA_OAUTH_DECL void AuthClient::getAuthorizationHeader(const OAuthCredentials& tenant, HeaderHandler done) {
    impl_->handlerFor(std::move(done), Impl::keyOf(tenant), Impl::specOf(tenant));
}

MCA_OAUTH_DECL void AuthClient::getAuthorizationHeader(const Tenant& tenant, HeaderHandler done) {
    impl_->handlerFor(std::move(done), tenant.record_.get());
}

MCA_OAUTH_DECL Tenant AuthClient::tenant(const Credentials& credentials) const {
    return Tenant(detail::resolveTenant(credentials));
}

MCA_OAUTH_DECL Tenant AuthClient::tenant(const CertificateCredentials& credentials) const {
    return Tenant(detail::resolveTenant(credentials));
}

MCA_OAUTH_DECL Tenant AuthClient::tenant(const OAuthCredentials& credentials) const {
    return Tenant(detail::resolveTenant(credentials));
}

MCA_OAUTH_DECL void AuthClient::invalidate(const OAuthCredentials& tenant) {
    impl_->retire(detail::cacheKeyOf(tenant), tenant, std::nullopt);
}

MCA_OAUTH_DECL void AuthClient::invalidate(const OAuthCredentials& tenant, std::string_view refusedHeader) {
    impl_->retire(detail::cacheKeyOf(tenant), tenant, refusedHeader);
}

MCA_OAUTH_DECL void AuthClient::invalidate(const Credentials& tenant) {
    impl_->retire(detail::cacheKeyOf(tenant), tenant, std::nullopt);
}

MCA_OAUTH_DECL void AuthClient::invalidate(const CertificateCredentials& tenant) {
    impl_->retire(detail::cacheKeyOf(tenant), tenant, std::nullopt);
}

MCA_OAUTH_DECL void AuthClient::invalidate(const Tenant& tenant) { impl_->retire(tenant.record_.get(), std::nullopt); }

MCA_OAUTH_DECL void AuthClient::invalidate(const Credentials& tenant, std::string_view refusedHeader) {
    impl_->retire(detail::cacheKeyOf(tenant), tenant, refusedHeader);
}

MCA_OAUTH_DECL void AuthClient::invalidate(const CertificateCredentials& tenant, std::string_view refusedHeader) {
    impl_->retire(detail::cacheKeyOf(tenant), tenant, refusedHeader);
}

MCA_OAUTH_DECL void AuthClient::invalidate(const Tenant& tenant, std::string_view refusedHeader) {
    impl_->retire(tenant.record_.get(), refusedHeader);
}

MCA_OAUTH_DECL Stats AuthClient::stats() const noexcept {
    const detail::Counters& counters = impl_->counters;
    Stats stats;
    stats.hits = counters.hits.total();
    stats.misses = counters.misses.load(std::memory_order_relaxed);
    stats.fetches = counters.fetches.load(std::memory_order_relaxed);
    stats.refreshes = counters.refreshes.load(std::memory_order_relaxed);
    stats.failures = counters.failures.load(std::memory_order_relaxed);
    stats.storeHits = counters.storeHits.load(std::memory_order_relaxed);
    stats.evictions = impl_->cache.evictions();
    stats.inFlight = counters.inFlight.load(std::memory_order_relaxed);
    stats.cachedTokens = impl_->cache.size();
    return stats;
}

MCA_OAUTH_DECL std::size_t AuthClient::cachedTokens() const noexcept { return impl_->cache.size(); }

MCA_OAUTH_DECL CertificateCredentials certificateCredentialsFromDirectory(const std::string& directory,
                                                                          std::string appId) {
    const auto read = [&](const char* name) {
        const std::string path = directory + "/imf_certificate/" + name;
        std::ifstream file(path, std::ios::binary);
        std::ostringstream contents;
        if (!file || !(contents << file.rdbuf())) throw Error(Errc::MissingPem, "cannot read " + path);
        return contents.str();
    };
    CertificateCredentials credentials;
    credentials.appId = std::move(appId);
    credentials.certificatePem = read("public-certificate.pem");
    credentials.privateKeyPem = read("private-key.pem");
    const char* serverUrl = std::getenv("imfServiceUrl");
    credentials.serverUrl = serverUrl != nullptr ? serverUrl : "";
    return credentials;
}

MCA_OAUTH_DECL std::optional<std::string> forwardableAuthorization(std::string_view incoming) {
    std::vector<std::string_view> parts;
    for (std::size_t at = 0; at < incoming.size();) {
        if (incoming[at] == ' ') {
            ++at;
            continue;
        }
        const std::size_t end = std::min(incoming.find(' ', at), incoming.size());
        parts.push_back(incoming.substr(at, end - at));
        at = end;
    }
    if (parts.size() < 2 || parts.size() > 3) return std::nullopt;
    const std::string_view scheme = parts[0];
    if (scheme.size() != 6 || !detail::startsWithNoCase(scheme, "bearer")) return std::nullopt;
    std::string forwarded = "Bearer";
    for (std::size_t i = 1; i < parts.size(); ++i) {
        if (!detail::isHeaderSafeToken(parts[i])) return std::nullopt;
        forwarded += ' ';
        forwarded += parts[i];
    }
    return forwarded;
}

MCA_OAUTH_NAMESPACE_END
