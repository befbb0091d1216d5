#pragma once

// The fleet protocol: how a fetch uses the shared store (`mca::TokenStore`), on the client's
// store thread so that neither callers nor the engine thread ever wait on the store.
//
//   consult   a token another instance published (sealed; the refused one never comes back),
//             else the fleet's lease for the key, else (another instance holds the lease) poll
//             for its token, for a bounded share of the fetch budget;
//   renew     the lease holder extends its short lease while its fetch runs, so a holder that
//             died is noticed within one lease length;
//   publish   the fetched token, sealed, with the wall-clock time its reply arrived; then the
//             lease goes back;
//   retire    a token a resource server refused is deleted, if it is still the one stored.
//
// Every store call is guarded: a store that throws counts as unavailable (logged once per
// change of state) and the fetch goes on without it. A fetch never waits for the store thread
// past its store budget: a consultation dequeued too late is skipped.

#include "../token_store.hpp"
#include "../version.hpp"
#include "log.hpp"
#include "retry_policy.hpp"
#include "sealing.hpp"
#include "secret.hpp"
#include "serial_executor.hpp"
#include "token_cache.hpp"

#include <openssl/rand.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

/// Where one tenant's token and lease live in the store, and what seals the token.
struct StorePlace {
    std::string tokenName;
    std::string leaseName;
    SecretString sealingSecret;
};

inline constexpr std::string_view kTokenPrefix = "mca-oauth:v1:token:";
inline constexpr std::string_view kLeasePrefix = "mca-oauth:v1:lease:";

/// The digest that names a tenant's entries in the store: over its identity fields (the ones
/// its cache key covers), keyed by the fleet key when the store has one.
inline std::string storeDigestOf(std::string_view fleetKey, const std::vector<SecretString>& identity) {
    std::vector<std::string_view> fields;
    for (const auto& field : identity) fields.push_back(field.view());
    return storeNameDigest(fleetKey, fields);
}

/// A lease this instance holds; renewed until released.
struct HeldLease {
    std::shared_ptr<const StorePlace> place;
    std::atomic<bool> held{true};
};

/// What a consultation found.
struct FleetAnswer {
    enum class Kind {
        Token,      // `token` came from the store
        LeaseHeld,  // this instance holds the lease (`lease`): fetch, then publish
        FetchAlone  // no store, no lease, or waited long enough: fetch without publishing duty
    };
    Kind kind = Kind::FetchAlone;
    SharedToken token;
    std::shared_ptr<HeldLease> lease;
};

class Fleet {
  public:
    using SteadyTime = std::chrono::steady_clock::time_point;

    /// One fetch's questions to the fleet.
    struct Consultation {
        std::shared_ptr<const StorePlace> place;
        std::string refused;                             // never take this header back ("" = none)
        std::function<bool(const SharedToken&)> usable;  // is a stored token fresh enough to serve
        SteadyTime storeUntil;                           // skip the store when dequeued later
        SteadyTime leaseUntil;                           // stop waiting for another holder then
        std::function<void(FleetAnswer)> done;           // exactly once, unless the client stops
    };

    Fleet(std::shared_ptr<TokenStore> store, const RetryPolicy& policy, const Logger& log)
        : store_(std::move(store)), policy_(policy), log_(log), holder_(randomHolderId()) {
        fleetKey_ = guarded(
            "reading the fleet key", [&] { return store_->fleetKey(); }, std::string());
    }
    ~Fleet() { stop(); }
    Fleet(const Fleet&) = delete;
    Fleet& operator=(const Fleet&) = delete;

    /// Runs the queued publications and lease releases, drops the rest. Idempotent.
    void stop() { tasks_.stop(); }
    std::thread::id threadId() const noexcept { return tasks_.threadId(); }

    /// The tenant's place: names carry only a digest of its identity (keyed by the fleet key).
    std::shared_ptr<const StorePlace> placeOf(const std::vector<SecretString>& identity,
                                              const SecretString& sealingSecret) const {
        const std::string digest = storeDigestOf(fleetKey_, identity);
        auto place = std::make_shared<StorePlace>();
        place->tokenName = std::string(kTokenPrefix) + digest;
        place->leaseName = std::string(kLeasePrefix) + digest;
        place->sealingSecret = sealingSecret;
        return place;
    }

    /// Queues the consultation; false when the store thread cannot take it (stopped, or a
    /// forked child's): the caller fetches alone.
    bool consult(std::shared_ptr<Consultation> question) {
        return tasks_.post([this, question] { step(question, /*first=*/true); });
    }

    /// Publishes a fetched token (best effort), then releases the lease if one is held.
    void publish(std::shared_ptr<const StorePlace> place, SharedToken token, std::shared_ptr<HeldLease> lease) {
        if (lease) lease->held = false;  // stops the renewals; the release follows the publication
        tasks_.post(
            [this, place = std::move(place), token = std::move(token), lease = std::move(lease)] {
                const auto ttl = timeToLive(token);
                if (ttl.count() > 0) {
                    guarded(
                        "publishing a token",
                        [&] {
                            store_->put(place->tokenName, seal(*place).seal(token), ttl);
                            return true;
                        },
                        false);
                }
                if (lease) releaseNow(*place);
            },
            std::chrono::steady_clock::now(), /*finishing=*/true);
    }

    /// Gives a lease back without publishing (the fetch failed).
    void release(const std::shared_ptr<HeldLease>& lease) {
        if (!lease) return;
        lease->held = false;
        tasks_.post([this, place = lease->place] { releaseNow(*place); }, std::chrono::steady_clock::now(),
                    /*finishing=*/true);
    }

    /// Deletes the stored token if it is `refused` (or whatever is stored, when nullopt).
    void retire(std::shared_ptr<const StorePlace> place, std::optional<std::string> refused) {
        tasks_.post(
            [this, place = std::move(place), refused = std::move(refused)] {
                const auto value = guarded(
                    "reading a token to retire", [&] { return store_->get(place->tokenName); },
                    std::optional<std::string>());
                if (!value) return;
                const auto stored = seal(*place).open(*value);
                if (refused && (!stored || stored->header != *refused)) return;
                guarded(
                    "retiring a token",
                    [&] {
                        store_->removeIfEqual(place->tokenName, *value);
                        return true;
                    },
                    false);
                log_(LogLevel::Info, "a refused token was retired from the shared store");
            },
            std::chrono::steady_clock::now(), /*finishing=*/true);
    }

  private:
    void step(const std::shared_ptr<Consultation>& asked, bool first) {
        Consultation& question = *asked;
        const auto now = std::chrono::steady_clock::now();
        if (first && now >= question.storeUntil) {
            log_(LogLevel::Debug, "the shared store is busy: fetching without it");
            return answer(question, FleetAnswer{});
        }
        if (auto found = storedToken(question)) return answer(question, std::move(*found));
        const auto lease = guarded(
            "taking a lease",
            [&] { return store_->tryLease(question.place->leaseName, holder_, policy_.leaseLength()); },
            TokenStore::Lease::Unavailable);
        if (lease == TokenStore::Lease::Acquired) {
            // The lease may be free because its last holder has just published: look again
            // before fetching, or the fleet makes a second request for a token it already has.
            if (auto found = storedToken(question)) {
                releaseNow(*question.place);
                return answer(question, std::move(*found));
            }
            FleetAnswer held;
            held.kind = FleetAnswer::Kind::LeaseHeld;
            held.lease = std::make_shared<HeldLease>();
            held.lease->place = question.place;
            scheduleRenewal(held.lease);
            return answer(question, std::move(held));
        }
        if (lease == TokenStore::Lease::Unavailable) return answer(question, FleetAnswer{});
        // Another instance is fetching: ask again shortly, within the share of the budget
        // reserved for waiting; then fetch alone with the rest.
        const auto next = std::chrono::steady_clock::now() + policy_.leasePoll(randomUnit());
        if (next >= question.leaseUntil) {
            log_(LogLevel::Debug, "waited long enough for another instance's token: fetching without it");
            return answer(question, FleetAnswer{});
        }
        if (!tasks_.post([this, asked] { step(asked, false); }, next)) answer(question, FleetAnswer{});
    }

    /// The stored token when it can serve this question: sealed for this tenant, not the one
    /// refused, and still usable.
    std::optional<FleetAnswer> storedToken(const Consultation& question) {
        const auto value = guarded(
            "reading a token", [&] { return store_->get(question.place->tokenName); }, std::optional<std::string>());
        if (!value) return std::nullopt;
        auto shared = seal(*question.place).open(*value);
        if (!shared || shared->header == question.refused || !question.usable(*shared)) return std::nullopt;
        FleetAnswer found;
        found.kind = FleetAnswer::Kind::Token;
        found.token = std::move(*shared);
        return found;
    }

    static void answer(Consultation& question, FleetAnswer found) {
        auto done = std::move(question.done);
        question.done = nullptr;
        if (done) done(std::move(found));
    }

    void scheduleRenewal(const std::shared_ptr<HeldLease>& lease) {
        tasks_.post(
            [this, lease] {
                if (!lease->held) return;
                const bool renewed = guarded(
                    "renewing a lease",
                    [&] { return store_->renewLease(lease->place->leaseName, holder_, policy_.leaseLength()); }, false);
                if (renewed) scheduleRenewal(lease);
            },
            std::chrono::steady_clock::now() + policy_.leaseRenewal());
    }

    void releaseNow(const StorePlace& place) {
        guarded(
            "releasing a lease",
            [&] {
                store_->releaseLease(place.leaseName, holder_);
                return true;
            },
            false);
    }

    TokenSeal seal(const StorePlace& place) const {
        return TokenSeal(place.sealingSecret.view(), place.tokenName, fleetKey_);
    }

    /// A published token lives in the store until it turns stale, measured from its reply.
    std::chrono::milliseconds timeToLive(const SharedToken& token) const {
        const auto issuedAt = token.issuedAt.value_or(std::chrono::system_clock::now());
        const auto lifetime = std::chrono::duration_cast<Seconds>(token.expiresAt - issuedAt);
        if (lifetime.count() <= 0) return std::chrono::milliseconds(0);
        const auto staleAfter = scheduleToken(SteadyTime{}, lifetime, 0.0).staleAt - SteadyTime{};
        return std::chrono::duration_cast<std::chrono::milliseconds>(issuedAt + staleAfter -
                                                                     std::chrono::system_clock::now());
    }

    /// Runs one store call; a throwing store counts as unavailable. A change between working
    /// and failing is logged once.
    template <class Call, class Result>
    Result guarded(const char* what, Call&& call, Result unavailable) const {
        try {
            Result result = call();
            if (failing_.exchange(false)) log_(LogLevel::Info, "the shared store works again");
            return result;
        } catch (const std::exception& error) {
            if (!failing_.exchange(true)) {
                log_(LogLevel::Warning, std::string("the shared store failed ") + what + " (" + error.what() +
                                            "); fetching without it until it works again");
            }
        } catch (...) {
            if (!failing_.exchange(true)) {
                log_(LogLevel::Warning,
                     std::string("the shared store failed ") + what + "; fetching without it until it works again");
            }
        }
        return unavailable;
    }

    /// A random id for this client's leases.
    static std::string randomHolderId() {
        std::array<unsigned char, 16> random{};
        if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) return "instance";
        return stableDigestHex({std::string_view(reinterpret_cast<char*>(random.data()), random.size())}).substr(0, 32);
    }

    std::shared_ptr<TokenStore> store_;
    const RetryPolicy& policy_;
    const Logger& log_;
    const std::string holder_;
    std::string fleetKey_;
    mutable std::atomic<bool> failing_{false};
    SerialExecutor tasks_;  // last: its thread starts once everything above exists
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
