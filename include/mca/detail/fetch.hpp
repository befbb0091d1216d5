#pragma once

// One fetch of one key, from start to end, as one object:
//
//   local miss -> shared store (fleet.hpp) -> lease -> token endpoint (http_engine.hpp) -> parse
//   -> cache -> waiters -> publish
//
// The key's waiters live in the cache entry (the rendezvous of single flight); the right to
// complete them is a `FetchClaim`, taken when the cache marks the key as fetching and settled
// exactly once: with a token, with an error, or, on any exit that forgot to (an exception, a
// task dropped at shutdown), by the claim's destructor with `Shutdown`. Every step that runs on
// a background thread is noexcept and turns what it calls into the fetch's error.

#include "../auth_client.hpp"
#include "../version.hpp"
#include "counters.hpp"
#include "fleet.hpp"
#include "flows.hpp"
#include "http_engine.hpp"
#include "log.hpp"
#include "metadata_cache.hpp"
#include "redaction.hpp"
#include "retry_policy.hpp"
#include "token_cache.hpp"
#include "token_reply.hpp"

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

/// The error of a fetch that ended without a result: the client stopped under it.
inline std::exception_ptr abandonedFetchError() noexcept {
    static const std::exception_ptr error =
        std::make_exception_ptr(Error(Errc::Shutdown, "the AuthClient was destroyed before the fetch finished"));
    return error;
}

/// The right, and the duty, to complete one key's waiters: settled exactly once.
class FetchClaim {
  public:
    FetchClaim(TokenCache& cache, const CacheKey& key) noexcept : cache_(&cache), key_(key) {}
    FetchClaim(FetchClaim&& other) noexcept : cache_(std::exchange(other.cache_, nullptr)), key_(other.key_) {}
    FetchClaim& operator=(FetchClaim&&) = delete;
    FetchClaim(const FetchClaim&) = delete;
    ~FetchClaim() {
        if (cache_ == nullptr) return;
        const auto error = abandonedFetchError();
        for (auto& waiter : fail(error, std::chrono::steady_clock::now(), 0.5)) waiter.fail(error);
    }

    bool open() const noexcept { return cache_ != nullptr; }
    const CacheKey& key() const noexcept { return key_; }

    /// Caches the token (when its schedule allows) and returns the waiters to give it to.
    /// If it throws (out of memory copying the header), nothing changed and the claim stays open.
    TokenCache::Waiters succeed(const std::string& header, std::optional<TokenSchedule> schedule, SteadyTime now) {
        auto waiters = cache_->completeWithToken(key_, header, schedule, now);
        cache_ = nullptr;
        return waiters;
    }

    /// Records the failure and returns the waiters to fail with it.
    TokenCache::Waiters fail(const std::exception_ptr& error, SteadyTime now, double jitter) noexcept {
        try {
            return std::exchange(cache_, nullptr)->completeWithError(key_, now, error, jitter);
        } catch (...) {  // nothing in there allocates
            return {};
        }
    }

  private:
    TokenCache* cache_;
    CacheKey key_;
};

/// What a fetch uses of its client. The client outlives every fetch: it stops its threads,
/// which settles or drops every fetch, before anything here is destroyed.
struct FetchContext {
    const Clock& clock;
    const RetryPolicy& policy;
    TokenCache& cache;
    Counters& counters;
    HttpEngine& engine;
    Fleet* fleet;  // null: process-local only
    const Logger& log;
    HttpRequest requestTemplate;  // the client's transport settings (CA, proxy, ...)
    ServerMetadataCache& discovery;
    OAuthTenantStates& oauthStates;
};

/// The schedule of a token read from the shared store: measured from when its reply arrived
/// (not from when it was read), its lifetime clamped like a fetched token's.
inline TokenSchedule storedTokenSchedule(const SharedToken& token, const Clock& clock, double jitter) {
    const auto systemNow = clock.systemNow();
    const auto issuedAt = std::min(token.issuedAt.value_or(systemNow), systemNow);
    const auto lifetime =
        std::clamp(std::chrono::duration_cast<Seconds>(token.expiresAt - issuedAt), Seconds(0), kMaxTokenLifetime);
    const auto received = clock.steadyNow() - std::chrono::duration_cast<SteadyTime::duration>(systemNow - issuedAt);
    return scheduleToken(received, lifetime, jitter);
}

class Fetch : public std::enable_shared_from_this<Fetch> {
  public:
    /// Starts the fetch `claim` stands for; never throws. `refused`: a header the fetch must not
    /// bring back from the store; `refresh`: a background refresh (the cached token serves on).
    template <class BuildSpec>
    static void start(FetchContext& context, FetchClaim&& claim, std::string refused, bool refresh,
                      const BuildSpec& buildSpec) noexcept {
        std::shared_ptr<Fetch> fetch;
        try {
            const CacheKey key = claim.key();
            fetch = std::make_shared<Fetch>(context, std::move(claim), std::move(refused), refresh);
            fetch->spec_ = buildSpec(FlowContext{context.clock.systemNow(), key, context.oauthStates});
            fetch->begin();
        } catch (...) {  // unusable credentials found only now (URL, PEM), or out of memory
            if (fetch) {
                fetch->fail(std::current_exception());
            } else if (claim.open()) {
                const auto error = std::current_exception();
                for (auto& waiter : claim.fail(error, std::chrono::steady_clock::now(), randomUnit()))
                    waiter.fail(error);
            }
        }
    }

    Fetch(FetchContext& context, FetchClaim&& claim, std::string refused, bool refresh)
        : context_(context),
          claim_(std::move(claim)),
          refused_(std::move(refused)),
          refresh_(refresh),
          startedAt_(std::chrono::steady_clock::now()),
          deadline_(startedAt_ + context.policy.timeout()) {
        if (refresh_) context_.counters.refreshes.fetch_add(1, std::memory_order_relaxed);
        context_.counters.inFlight.fetch_add(1, std::memory_order_relaxed);
    }

    ~Fetch() {
        if (claim_.open()) fail(abandonedFetchError());
    }

    Fetch(const Fetch&) = delete;
    Fetch& operator=(const Fetch&) = delete;

  private:
    // --- Shared store ---

    void begin() {
        Fleet* fleet = context_.fleet;
        if (fleet != nullptr && !spec_.sealingSecret.empty()) {  // nothing to seal with: process-local
            place_ = fleet->placeOf(spec_.identity, spec_.sealingSecret);
            auto question = std::make_shared<Fleet::Consultation>();
            question->place = place_;
            question->refused = refused_;
            question->usable = [&clock = context_.clock](const SharedToken& token) {
                return storedTokenSchedule(token, clock, 0.0).staleAt > clock.steadyNow();
            };
            question->storeUntil = startedAt_ + context_.policy.storeWait();
            question->leaseUntil = startedAt_ + context_.policy.leaseWait();
            question->done = [self = shared_from_this()](FleetAnswer answer) {
                self->onFleetAnswer(std::move(answer));
            };
            if (fleet->consult(std::move(question))) return;
        }
        sendToServer();
    }

    void onFleetAnswer(FleetAnswer answer) noexcept {
        try {
            if (answer.kind == FleetAnswer::Kind::Token) {
                const auto schedule = storedTokenSchedule(answer.token, context_.clock, randomUnit());
                context_.counters.storeHits.fetch_add(1, std::memory_order_relaxed);
                context_.log(LogLevel::Info, "token for " + spec_.label + " taken from the shared store");
                return succeed(answer.token.header, schedule, std::nullopt);
            }
            lease_ = std::move(answer.lease);
            sendToServer();
        } catch (...) {
            fail(std::current_exception());
        }
    }

    // --- Token endpoint ---

    void sendToServer() {
        if (spec_.url.empty()) return discover();
        context_.counters.fetches.fetch_add(1, std::memory_order_relaxed);
        context_.log(LogLevel::Debug, std::string(refresh_ ? "refreshing ahead of expiry" : "fetching") +
                                          " the token for " + spec_.label + " from " + spec_.url);
        HttpRequest request = context_.requestTemplate;
        request.url = spec_.url;
        request.body = spec_.body.view();
        request.authorization = spec_.authorization;
        request.clientCertificatePem = spec_.clientCertificatePem;
        request.clientKeyPem = spec_.clientKeyPem;
        request.beforeAttempt = spec_.beforeAttempt;
        request.redactions = spec_.redactions;
        request.deadline = deadline_;
        context_.engine.submit(std::move(request),
                               [self = shared_from_this()](HttpReply* reply, std::exception_ptr error) noexcept {
                                   self->onReply(reply, std::move(error));
                               });
    }

    // --- Discovery: the token endpoint of `spec_.issuer` ---

    void discover() {
        context_.discovery.resolve(spec_.issuer, deadline_,
                                   [self = shared_from_this()](std::shared_ptr<const ServerMetadata> metadata,
                                                               std::exception_ptr error) noexcept {
                                       self->onMetadata(std::move(metadata), std::move(error));
                                   });
    }

    void onMetadata(std::shared_ptr<const ServerMetadata> metadata, std::exception_ptr error) noexcept {
        try {
            if (error) return fail(std::move(error));
            requireAuthMethod(*metadata, spec_.authMethod);
            spec_.url = metadata->tokenEndpoint;
            discovered_ = true;
            sendToServer();
        } catch (...) {
            fail(std::current_exception());
        }
    }

    /// A discovered endpoint that is gone (unreachable, or 404) is discovered again next time.
    void forgetEndpointIfGone(const HttpReply* reply, const std::exception_ptr& error) noexcept {
        if (!discovered_) return;
        bool gone = reply != nullptr && reply->status == 404;
        try {
            if (error) std::rethrow_exception(error);
        } catch (const Error& failure) {
            gone = failure.errc() == Errc::Network;
        } catch (...) {
        }
        try {
            if (gone) context_.discovery.forget(spec_.issuer);
        } catch (...) {
        }
    }

    /// On the engine thread (or inline when the engine has stopped).
    void onReply(HttpReply* reply, std::exception_ptr error) noexcept {
        forgetEndpointIfGone(reply, error);
        try {
            if (error) return fail(std::move(error));
            const std::string& target = spec_.url;
            if (reply->status != 200) {
                std::string message = "token request to " + target + " failed with HTTP " +
                                      std::to_string(reply->status) + ": " +
                                      describeErrorBody(reply->body, spec_.redactions);
                redactAll(message, spec_.redactions);  // whatever reaches a message passes redaction last
                return fail(
                    std::make_exception_ptr(Error(Errc::TokenGenerate, message, static_cast<int>(reply->status))));
            }
            TokenReply parsed;
            try {
                parsed = parseTokenReply(reply->body);
            } catch (const InvalidReply& invalid) {
                return fail(std::make_exception_ptr(
                    Error(Errc::InvalidResponse, std::string(invalid.what()) + " (from " + target + ")", 200)));
            }
            const auto issuedAt = context_.clock.systemNow();
            const auto lifetime = tokenLifetime(parsed, reply->date, issuedAt);
            const std::string header = "Bearer " + parsed.accessToken;
            std::optional<TokenSchedule> schedule;
            std::optional<SharedToken> shared;
            if (lifetime) {
                schedule = scheduleToken(context_.clock.steadyNow(), *lifetime, randomUnit());
                if (lifetime->count() > 0) shared = SharedToken{header, issuedAt + *lifetime, issuedAt};
            }
            context_.log(LogLevel::Info, "token for " + spec_.label + " fetched, valid for " +
                                             (lifetime ? std::to_string(lifetime->count()) + " s" : "an unknown time"));
            succeed(header, schedule, std::move(shared));
        } catch (...) {
            fail(std::current_exception());
        }
    }

    // --- The end: cache, waiters, publication ---

    void succeed(const std::string& header, std::optional<TokenSchedule> schedule, std::optional<SharedToken> shared) {
        auto waiters = claim_.succeed(header, schedule, steadyNow());
        context_.counters.inFlight.fetch_sub(1, std::memory_order_relaxed);
        for (auto& waiter : waiters) waiter.succeed(header);
        if (context_.fleet == nullptr || !place_) return;
        if (shared) {
            context_.fleet->publish(place_, std::move(*shared), std::move(lease_));
        } else {
            context_.fleet->release(lease_);
        }
    }

    void fail(std::exception_ptr error) noexcept {
        if (!claim_.open()) return;
        context_.counters.failures.fetch_add(1, std::memory_order_relaxed);
        context_.counters.inFlight.fetch_sub(1, std::memory_order_relaxed);
        auto waiters = claim_.fail(error, steadyNow(), randomUnit());
        if (context_.log) {
            try {
                // A background refresh that fails without waiters leaves the cached token serving.
                const bool stillServing = refresh_ && waiters.empty();
                std::string reason = describe(error);
                redactAll(reason, spec_.redactions);
                context_.log(
                    stillServing ? LogLevel::Warning : LogLevel::Error,
                    (stillServing ? "background refresh failed, the cached token still serves" : "token fetch failed") +
                        std::string(spec_.label.empty() ? "" : " for " + spec_.label) + ": " + reason);
            } catch (...) {
            }
        }
        for (auto& waiter : waiters) waiter.fail(error);
        if (context_.fleet != nullptr && place_ && lease_) {
            try {
                context_.fleet->release(lease_);
            } catch (...) {  // the lease lapses on its own
            }
        }
    }

    /// The client's clock, which a user may inject: if it throws here, the real one answers.
    SteadyTime steadyNow() const noexcept {
        try {
            return context_.clock.steadyNow();
        } catch (...) {
            return std::chrono::steady_clock::now();
        }
    }

    FetchContext& context_;
    FetchClaim claim_;
    const std::string refused_;
    const bool refresh_;
    const SteadyTime startedAt_;
    const SteadyTime deadline_;
    FetchSpec spec_;
    std::shared_ptr<const StorePlace> place_;  // null: the token is not shared
    std::shared_ptr<HeldLease> lease_;
    bool discovered_ = false;  // spec_.url came from the issuer's metadata
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
