#pragma once

// The implementation behind mca::AuthClient: the token flows (what a tenant's request looks
// like), the call path (cache hit, single flight, fail fast, refresh ahead), fetch completion on
// the engine thread, counters and logging. Included at the end of <mca/auth_client.hpp>.

#include "../auth_client.hpp"
#include "certificate.hpp"
#include "http_engine.hpp"
#include "sealing.hpp"
#include "secret.hpp"
#include "serial_executor.hpp"
#include "token_cache.hpp"
#include "token_reply.hpp"
#include "token_request.hpp"
#include "vcap.hpp"

#include <array>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

namespace mca {
namespace detail {

/// What a fetch sends, built from a tenant's credentials when a fetch starts (never on a hit).
struct FetchSpec {
    std::string url;
    std::string body;
    SecretString authorization;            // the Authorization header value
    std::vector<SecretString> redactions;  // never to appear in a message
    std::string label;                     // who the token is for, for messages and logs
    std::string storeName;                 // the shared store's name for the tenant: a digest
    SecretString storeSecret;              // what seals the tenant's tokens in the shared store
};

// --- The secret flow: MCA, or any OAuth 2.0 client-credentials endpoint (tokenUrl) -----------

inline void requireCredentials(const Credentials& tenant, const char* origin) {
    const bool mca = tenant.tokenUrl.empty();
    if (mca && tenant.appId.empty()) throw Error(Errc::MissingAppId, std::string("appId is missing") + origin);
    if (tenant.clientId.empty()) throw Error(Errc::MissingClientId, std::string("clientId is missing") + origin);
    if (tenant.secret.empty()) throw Error(Errc::MissingSecret, std::string("secret is missing") + origin);
    if (mca && trimWhitespace(tenant.serverUrl).empty()) {
        throw Error(Errc::MissingServerUrl, std::string("serverUrl is missing") + origin);
    }
}

/// URLs as cache-key fields: trimmed, without a trailing '/', so spelling variants share a token.
inline std::string_view keyUrl(std::string_view url) {
    url = trimWhitespace(url);
    if (!url.empty() && url.back() == '/') url.remove_suffix(1);
    return url;
}

/// The cache key of a secret-flow tenant. Allocation-free after a thread's first call: a hit
/// computes it.
inline CacheKey secretFlowKey(const Credentials& tenant) {
    return KeyedDigest::forThisThread()
        .field("secret-flow")
        .field(keyUrl(tenant.serverUrl))
        .field(keyUrl(tenant.tokenUrl))
        .field(tenant.appId)
        .field(tenant.clientId)
        .field(tenant.scope)
        .field(tenant.secret)
        .finish();
}

inline std::string tenantLabel(const std::string& appId, const char* clientKind, const std::string& clientId) {
    return (appId.empty() ? std::string() : "appId '" + appId + "', ") + clientKind + " '" + clientId + "'";
}

inline FetchSpec secretFlowRequest(const Credentials& tenant) {
    FetchSpec spec;
    spec.body = std::string(kClientCredentialsForm);
    if (!tenant.scope.empty()) spec.body += "&scope=" + formEncode(tenant.scope);
    if (tenant.tokenUrl.empty()) {
        const auto serverUrl = normalizeServerUrl(tenant.serverUrl);
        if (!serverUrl) throw Error(Errc::MissingServerUrl, "serverUrl is not an absolute http(s) URL with a host");
        spec.url = mcaTokenUrl(*serverUrl, tenant.appId);
        spec.authorization = basicAuthorization(tenant.clientId, tenant.secret);
    } else {
        const auto tokenUrl = normalizeServerUrl(tenant.tokenUrl);
        if (!tokenUrl) throw Error(Errc::MissingServerUrl, "tokenUrl is not an absolute http(s) URL with a host");
        spec.url = std::string(trimWhitespace(tenant.tokenUrl));
        spec.authorization = oauthBasicAuthorization(tenant.clientId, tenant.secret);
    }
    spec.redactions.emplace_back(tenant.secret);
    spec.redactions.push_back(spec.authorization);
    spec.label = tenantLabel(tenant.appId, "clientId", tenant.clientId);
    spec.storeName = stableDigestHex({"secret-flow", keyUrl(tenant.serverUrl), keyUrl(tenant.tokenUrl), tenant.appId,
                                      tenant.clientId, tenant.scope, tenant.secret});
    spec.storeSecret = SecretString(tenant.secret);
    return spec;
}

// --- The certificate flow ----------------------------------------------------------------------

inline void requireCredentials(const CertificateCredentials& tenant) {
    if (tenant.appId.empty()) throw Error(Errc::MissingAppId, "appId is missing");
    if (trimWhitespace(tenant.certificatePem).empty()) throw Error(Errc::MissingPem, "certificatePem is missing");
    if (trimWhitespace(tenant.privateKeyPem).empty()) throw Error(Errc::MissingPem, "privateKeyPem is missing");
    if (trimWhitespace(tenant.serverUrl).empty()) {
        throw Error(Errc::MissingServerUrl, "serverUrl is missing (the Node SDK's imfServiceUrl)");
    }
}

/// The key covers the private key too: a caller holding the certificate with another key must
/// not be handed the token.
inline CacheKey certificateFlowKey(const CertificateCredentials& tenant) {
    return KeyedDigest::forThisThread()
        .field("certificate-flow")
        .field(keyUrl(tenant.serverUrl))
        .field(tenant.appId)
        .field(tenant.certificatePem)
        .field(tenant.privateKeyPem)
        .finish();
}

inline FetchSpec certificateFlowRequest(const CertificateCredentials& tenant, SystemTime now) {
    const auto serverUrl = normalizeServerUrl(tenant.serverUrl);
    if (!serverUrl) throw Error(Errc::MissingServerUrl, "serverUrl is not an absolute http(s) URL with a host");
    const ClientCertificate certificate(tenant.certificatePem, tenant.privateKeyPem);
    FetchSpec spec;
    spec.url = mcaTokenUrl(*serverUrl, tenant.appId);
    spec.body = std::string(kClientCredentialsForm) + "&client_id=" + formEncode(certificate.commonName());
    spec.authorization = SecretString("IMFCert " + certificate.signedAssertion(now));
    spec.redactions.push_back(spec.authorization);
    spec.label = tenantLabel(tenant.appId, "certificate CN", certificate.commonName());
    spec.storeName = stableDigestHex(
        {"certificate-flow", keyUrl(tenant.serverUrl), tenant.appId, tenant.certificatePem, tenant.privateKeyPem});
    spec.storeSecret = SecretString(tenant.privateKeyPem);
    return spec;
}

// --- Counters ----------------------------------------------------------------------------------

/// Hits are counted on stripes of their own cache lines, chosen per thread, so that counting
/// does not make threads that hit the same key write one shared line.
class HitCounter {
  public:
    void add() noexcept { stripes_[stripeOfThisThread()].value.fetch_add(1, std::memory_order_relaxed); }
    std::uint64_t total() const noexcept {
        std::uint64_t sum = 0;
        for (const auto& stripe : stripes_) sum += stripe.value.load(std::memory_order_relaxed);
        return sum;
    }

  private:
    static constexpr std::size_t kStripes = 16;
    struct alignas(64) Stripe {
        std::atomic<std::uint64_t> value{0};
    };
    static std::size_t stripeOfThisThread() noexcept {
        thread_local const std::size_t stripe = std::hash<std::thread::id>()(std::this_thread::get_id()) % kStripes;
        return stripe;
    }
    std::array<Stripe, kStripes> stripes_;
};

struct Counters {
    HitCounter hits;
    std::atomic<std::uint64_t> misses{0}, fetches{0}, refreshes{0}, failures{0}, storeHits{0};
    std::atomic<std::size_t> inFlight{0};
};

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

}  // namespace detail

struct AuthClient::Impl {
    explicit Impl(Options options)
        : clock(options.clock ? std::move(options.clock) : std::make_shared<detail::SystemClock>()),
          caInfo(std::move(options.caInfo)),
          proxy(std::move(options.proxy)),
          allowInsecureHttp(options.allowInsecureHttp),
          timeout(options.timeout),
          log(std::move(options.log)),
          store(std::move(options.sharedStore)),
          storeTasks(store ? std::make_unique<detail::SerialExecutor>() : nullptr),
          holderId(randomHolderId()),
          cache(options.cacheSize),
          engine([this](const detail::HttpRequest& request, unsigned attempt, std::chrono::milliseconds delay,
                        const std::string& reason) {
              logLine(LogLevel::Debug, "attempt " + std::to_string(attempt) + " to " + request.url + " failed (" +
                                           reason + "); retrying in " + std::to_string(delay.count()) + " ms");
          }) {
        resolveDefaults(options);
        detail::wipeString(options.secret);
    }

    ~Impl() {
        engine.stop();  // in-flight fetches end with Shutdown, failing their waiters
        // Then the store thread: leases held go back, lookups still queued are dropped.
        if (storeTasks) storeTasks->stop();
        const auto shutdown = std::make_exception_ptr(Error(Errc::Shutdown, "the AuthClient was destroyed"));
        for (auto& waiter : cache.clear()) waiter.fail(shutdown);
        detail::wipeString(defaults.secret);
    }

    void resolveDefaults(const Options& options) {
        detail::VcapCredentials vcap = detail::parseVcap(std::getenv("VCAP_SERVICES"), std::getenv("VCAP_APPLICATION"));
        const auto pick = [](const std::string& given, const std::string& fromVcap) {
            return given.empty() ? fromVcap : given;
        };
        defaults.appId = pick(options.appId, vcap.appId);
        defaults.clientId = pick(options.clientId, vcap.clientId);
        defaults.secret = pick(options.secret, vcap.secret);
        defaults.serverUrl = pick(options.serverUrl, vcap.serverUrl);
        defaults.tokenUrl = pick(options.tokenUrl, vcap.oauthServerUrl.empty() ? "" : vcap.oauthServerUrl + "/token");
        defaults.scope = options.scope;
        detail::wipeString(vcap.secret);
        const std::string origin = std::string(" (not in Options, nor in VCAP_SERVICES / VCAP_APPLICATION") +
                                   (vcap.problem.empty() ? "" : ": " + vcap.problem) + ")";
        try {
            detail::requireCredentials(defaults, origin.c_str());
            defaultKey = detail::secretFlowKey(defaults);
        } catch (const Error&) {
            defaultError = std::current_exception();
        }
    }

    /// A random id for this client's leases in the shared store.
    static std::string randomHolderId() {
        std::array<unsigned char, 16> random{};
        if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) return "instance";
        return detail::stableDigestHex({std::string_view(reinterpret_cast<char*>(random.data()), random.size())})
            .substr(0, 32);
    }

    void logLine(LogLevel level, const std::string& message) const {
        if (!log) return;
        try {
            log(level, message);
        } catch (...) {  // a throwing log handler must not break token delivery
        }
    }

    /// The call path shared by every flow and both APIs. `buildRequest` runs only when this call
    /// has to start a fetch.
    template <class BuildRequest>
    void serve(const detail::CacheKey& key, detail::Waiter waiter, const BuildRequest& buildRequest) {
        const auto now = clock->steadyNow();
        std::string header;
        if (cache.tryHit(key, now, header)) {
            counters.hits.add();
            waiter.succeed(std::move(header));
            return;
        }
        std::exception_ptr failure;
        switch (cache.acquire(key, now, header, waiter, failure)) {
            case detail::TokenCache::Acquired::Hit:
                counters.hits.add();
                waiter.succeed(std::move(header));
                break;
            case detail::TokenCache::Acquired::HitRefresh:
                counters.hits.add();
                waiter.succeed(header);
                startFetch(key, buildRequest, /*refreshing=*/std::move(header));
                break;
            case detail::TokenCache::Acquired::Fetch:
                counters.misses.fetch_add(1, std::memory_order_relaxed);
                startFetch(key, buildRequest, /*refreshing=*/"");
                break;
            case detail::TokenCache::Acquired::Joined:
                counters.misses.fetch_add(1, std::memory_order_relaxed);
                break;
            case detail::TokenCache::Acquired::Failed:
                counters.misses.fetch_add(1, std::memory_order_relaxed);
                waiter.fail(std::move(failure));
                break;
        }
    }

    /// One fetch of one key, from its start to its end: through the shared store (when there is
    /// one) and the auth server. Shared by the tasks and callbacks that carry it along.
    struct Fetch {
        detail::CacheKey key{};
        detail::FetchSpec spec;
        std::string refreshing;  // a background refresh: the header it replaces; "" for a cold fetch
        std::chrono::steady_clock::time_point deadline;
        bool leaseHeld = false;  // this instance holds the fleet's lease for the key
        bool refresh() const { return !refreshing.empty(); }
        std::string tokenName() const { return "mca-oauth:v1:token:" + spec.storeName; }
        std::string leaseName() const { return "mca-oauth:v1:lease:" + spec.storeName; }
    };
    using FetchPtr = std::shared_ptr<Fetch>;

    template <class BuildRequest>
    void startFetch(const detail::CacheKey& key, const BuildRequest& buildRequest, std::string refreshing) {
        auto fetch = std::make_shared<Fetch>();
        fetch->key = key;
        fetch->refreshing = std::move(refreshing);
        fetch->deadline = std::chrono::steady_clock::now() + timeout;
        if (fetch->refresh()) counters.refreshes.fetch_add(1, std::memory_order_relaxed);
        counters.inFlight.fetch_add(1, std::memory_order_relaxed);
        try {
            fetch->spec = buildRequest();
        } catch (...) {  // unusable credentials found only now (URL, PEM): the key's waiters fail
            finish(*fetch, std::current_exception());
            return;
        }
        if (storeTasks && storeTasks->post([this, fetch] { consultStore(fetch); }, std::chrono::steady_clock::now())) {
            return;
        }
        sendToServer(fetch);
    }

    // --- The shared store (store thread) ---

    /// A local miss asks the fleet first: a token another instance published, else the lease to
    /// fetch it for everyone, else (someone else holds the lease) a short wait for its token.
    void consultStore(const FetchPtr& fetch) {
        if (const auto value = store->get(fetch->tokenName())) {
            const detail::TokenSeal seal(fetch->spec.storeSecret.view(), fetch->tokenName());
            if (const auto shared = seal.open(*value); shared && shared->header != fetch->refreshing) {
                const auto lifetime =
                    std::chrono::duration_cast<detail::Seconds>(shared->expiresAt - clock->systemNow());
                if (lifetime.count() > 0) return completeFromStore(*fetch, *shared, lifetime);
            }
        }
        switch (store->tryLease(fetch->leaseName(), holderId, timeout)) {
            case TokenStore::Lease::Acquired:
                fetch->leaseHeld = true;
                return sendToServer(fetch);
            case TokenStore::Lease::Unavailable:
                return sendToServer(fetch);
            case TokenStore::Lease::HeldElsewhere:
                break;
        }
        const auto pollAt = std::chrono::steady_clock::now() +
                            std::chrono::milliseconds(25 + static_cast<int>(50 * detail::randomUnit()));
        if (pollAt >= fetch->deadline || !storeTasks->post([this, fetch] { consultStore(fetch); }, pollAt)) {
            sendToServer(fetch);  // waited long enough for the lease holder: fetch for ourselves
        }
    }

    void completeFromStore(Fetch& fetch, const detail::SharedToken& shared, detail::Seconds lifetime) {
        counters.storeHits.fetch_add(1, std::memory_order_relaxed);
        counters.inFlight.fetch_sub(1, std::memory_order_relaxed);
        auto waiters =
            cache.completeWithToken(fetch.key, shared.header, lifetime, clock->steadyNow(), detail::randomUnit());
        logLine(LogLevel::Info, "token for " + fetch.spec.label + " taken from the shared store");
        for (auto& waiter : waiters) waiter.succeed(shared.header);
    }

    /// Publishes a fetched token to the fleet and gives the lease back (store thread).
    void publish(const FetchPtr& fetch, const std::string& header, std::optional<detail::Seconds> lifetime) {
        if (lifetime && lifetime->count() > 0) {
            const auto schedule = detail::scheduleToken(std::chrono::steady_clock::time_point{}, *lifetime, 0.0);
            const auto untilStale =
                std::chrono::duration_cast<std::chrono::milliseconds>(schedule.staleAt.time_since_epoch());
            const detail::TokenSeal seal(fetch->spec.storeSecret.view(), fetch->tokenName());
            store->put(fetch->tokenName(), seal.seal({header, clock->systemNow() + *lifetime}), untilStale);
        }
        if (fetch->leaseHeld) store->releaseLease(fetch->leaseName(), holderId);
    }

    // --- The auth server (engine thread) ---

    void sendToServer(const FetchPtr& fetch) {
        counters.fetches.fetch_add(1, std::memory_order_relaxed);
        logLine(LogLevel::Debug, std::string(fetch->refresh() ? "refreshing ahead of expiry" : "fetching") +
                                     " the token for " + fetch->spec.label + " from " + fetch->spec.url);
        detail::HttpRequest request;
        request.url = fetch->spec.url;
        request.body = fetch->spec.body;
        request.authorization = fetch->spec.authorization;
        request.redactions = fetch->spec.redactions;
        request.caInfo = caInfo;
        request.proxy = proxy;
        request.allowInsecureHttp = allowInsecureHttp;
        request.deadline = fetch->deadline;
        engine.submit(std::move(request), [this, fetch](detail::HttpReply* reply, std::exception_ptr error) {
            complete(fetch, reply, std::move(error));
        });
    }

    // Runs on the engine thread (or inline after shutdown): turns the reply into a token or an
    // error, updates the cache and completes every waiter of the key.
    void complete(const FetchPtr& fetch, detail::HttpReply* reply, std::exception_ptr error) {
        const std::string& target = fetch->spec.url;
        if (!error && reply->status != 200) {
            // Redact before describing: describing truncates, and a secret cut in two would survive.
            for (const auto& secret : fetch->spec.redactions) detail::redact(reply->body, secret.view());
            const std::string description = detail::describeErrorBody(reply->body);
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
                auto waiters =
                    cache.completeWithToken(fetch->key, header, lifetime, clock->steadyNow(), detail::randomUnit());
                counters.inFlight.fetch_sub(1, std::memory_order_relaxed);
                logLine(LogLevel::Info, "token for " + fetch->spec.label + " fetched, valid for " +
                                            (lifetime ? std::to_string(lifetime->count()) + " s" : "an unknown time"));
                for (auto& waiter : waiters) waiter.succeed(header);
                if (storeTasks) {
                    storeTasks->post([this, fetch, header, lifetime] { publish(fetch, header, lifetime); },
                                     std::chrono::steady_clock::now(), /*finishing=*/true);
                }
                return;
            } catch (const detail::InvalidReply& invalid) {
                error = std::make_exception_ptr(
                    Error(Errc::InvalidResponse, std::string(invalid.what()) + " (from " + target + ")", 200));
            }
        }
        finish(*fetch, std::move(error));
        if (fetch->leaseHeld) {
            storeTasks->post([this, fetch] { store->releaseLease(fetch->leaseName(), holderId); },
                             std::chrono::steady_clock::now(), /*finishing=*/true);
        }
    }

    void finish(const Fetch& fetch, std::exception_ptr error) {
        counters.failures.fetch_add(1, std::memory_order_relaxed);
        counters.inFlight.fetch_sub(1, std::memory_order_relaxed);
        auto waiters = cache.completeWithError(fetch.key, clock->steadyNow(), error, detail::randomUnit());
        if (log) {
            std::string reason;
            try {
                std::rethrow_exception(error);
            } catch (const std::exception& e) {
                reason = e.what();
            }
            const bool stillServing = fetch.refresh() && waiters.empty();
            const std::string& label = fetch.spec.label;
            logLine(stillServing ? LogLevel::Warning : LogLevel::Error,
                    (stillServing ? "background refresh failed, the cached token still serves" : "token fetch failed") +
                        std::string(label.empty() ? "" : " for " + label) + ": " + reason);
        }
        for (auto& waiter : waiters) waiter.fail(error);
    }

    // --- The public calls: the key of the tenant's token (or why there is none), then serve ---

    detail::CacheKey defaultKeyOrThrow() const {
        if (defaultError) std::rethrow_exception(defaultError);
        return defaultKey;
    }

    static detail::CacheKey keyOrThrow(const Credentials& tenant) {
        detail::requireCredentials(tenant, "");
        return detail::secretFlowKey(tenant);
    }

    static detail::CacheKey keyOrThrow(const CertificateCredentials& tenant) {
        detail::requireCredentials(tenant);
        return detail::certificateFlowKey(tenant);
    }

    auto requestFor(const Credentials& tenant) const {
        return [&tenant] { return detail::secretFlowRequest(tenant); };
    }

    auto requestFor(const CertificateCredentials& tenant) const {
        return [this, &tenant] { return detail::certificateFlowRequest(tenant, clock->systemNow()); };
    }

    /// The future API. A hit returns a ready future at once: one lookup, the header's copy and
    /// the future's shared state, nothing else.
    template <class KeyOf, class BuildRequest>
    std::future<std::string> futureFor(const KeyOf& keyOf, const BuildRequest& buildRequest) {
        detail::CacheKey key;
        try {
            key = keyOf();
        } catch (...) {
            return detail::failedFuture(std::current_exception());
        }
        std::string header;
        std::promise<std::string> promise;
        if (cache.tryHit(key, clock->steadyNow(), header)) {
            counters.hits.add();
            promise.set_value(std::move(header));
            return promise.get_future();
        }
        auto future = promise.get_future();
        try {
            serve(key, detail::Waiter(std::move(promise)), buildRequest);
        } catch (...) {  // only an allocation failure could get here
            return detail::failedFuture(std::current_exception());
        }
        return future;
    }

    /// The handler API: every outcome goes to `done`.
    template <class KeyOf, class BuildRequest>
    void handlerFor(HeaderHandler done, const KeyOf& keyOf, const BuildRequest& buildRequest) {
        detail::Waiter waiter(std::move(done));
        detail::CacheKey key;
        try {
            key = keyOf();
        } catch (...) {
            return waiter.fail(std::current_exception());
        }
        serve(key, std::move(waiter), buildRequest);
    }

    std::shared_ptr<const Clock> clock;
    std::string caInfo;
    std::string proxy;
    bool allowInsecureHttp;
    std::chrono::milliseconds timeout;
    LogHandler log;
    std::shared_ptr<TokenStore> store;                   // null: process-local only
    std::unique_ptr<detail::SerialExecutor> storeTasks;  // the store thread, when there is a store
    std::string holderId;                                // names this instance's leases
    Credentials defaults;                                // secret wiped on destruction
    detail::CacheKey defaultKey{};
    std::exception_ptr defaultError;  // why the default credentials are unusable, if they are
    detail::Counters counters;
    detail::TokenCache cache;
    detail::HttpEngine engine;  // last: its thread starts once everything above exists
};

inline AuthClient::AuthClient(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
inline AuthClient::~AuthClient() = default;
inline AuthClient::AuthClient(AuthClient&&) noexcept = default;
inline AuthClient& AuthClient::operator=(AuthClient&&) noexcept = default;

inline std::future<std::string> AuthClient::getAuthorizationHeader() {
    return impl_->futureFor([this] { return impl_->defaultKeyOrThrow(); }, impl_->requestFor(impl_->defaults));
}

inline std::future<std::string> AuthClient::getAuthorizationHeader(const Credentials& tenant) {
    return impl_->futureFor([&] { return Impl::keyOrThrow(tenant); }, impl_->requestFor(tenant));
}

inline std::future<std::string> AuthClient::getAuthorizationHeader(const CertificateCredentials& tenant) {
    return impl_->futureFor([&] { return Impl::keyOrThrow(tenant); }, impl_->requestFor(tenant));
}

inline void AuthClient::getAuthorizationHeader(HeaderHandler done) {
    impl_->handlerFor(
        std::move(done), [this] { return impl_->defaultKeyOrThrow(); }, impl_->requestFor(impl_->defaults));
}

inline void AuthClient::getAuthorizationHeader(const Credentials& tenant, HeaderHandler done) {
    impl_->handlerFor(
        std::move(done), [&] { return Impl::keyOrThrow(tenant); }, impl_->requestFor(tenant));
}

inline void AuthClient::getAuthorizationHeader(const CertificateCredentials& tenant, HeaderHandler done) {
    impl_->handlerFor(
        std::move(done), [&] { return Impl::keyOrThrow(tenant); }, impl_->requestFor(tenant));
}

inline void AuthClient::invalidate(const Credentials& tenant) {
    impl_->cache.invalidate(detail::secretFlowKey(tenant));
}

inline void AuthClient::invalidate(const CertificateCredentials& tenant) {
    impl_->cache.invalidate(detail::certificateFlowKey(tenant));
}

inline Stats AuthClient::stats() const noexcept {
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

inline std::size_t AuthClient::cachedTokens() const noexcept { return impl_->cache.size(); }

inline CertificateCredentials certificateCredentialsFromDirectory(const std::string& directory, std::string appId) {
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

inline std::optional<std::string> forwardableAuthorization(std::string_view incoming) {
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

}  // namespace mca
