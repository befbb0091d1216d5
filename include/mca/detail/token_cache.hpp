#pragma once

// The process-local token cache: an LRU of ready "Bearer ..." headers with single-flight fetch
// bookkeeping. Thread-safe. Hits take one shard's lock in shared mode and write nothing shared
// except, at most once per millisecond, the entry's recency stamp. Fetch completions arrive from
// the engine thread; waiters are handed back to the caller to fulfil outside the locks.

#include "../version.hpp"
#include "read_mostly_mutex.hpp"
#include "retry_policy.hpp"
#include "secret.hpp"
#include "token_reply.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

using SteadyTime = std::chrono::steady_clock::time_point;

/// Identifies one tenant's token: a keyed digest over the flow, server URL, appId, clientId and
/// the secret, so no secret is stored and a wrong secret never matches a right one.
using CacheKey = KeyedDigest::Value;

struct CacheKeyHash {
    std::size_t operator()(const CacheKey& key) const noexcept {
        std::size_t hash;  // the key is already a uniform digest: its first bytes are a fine hash
        std::memcpy(&hash, key.data(), sizeof hash);
        return hash;
    }
};

/// When a token stops being handed out, and when its background refresh may start.
struct TokenSchedule {
    SteadyTime refreshAt;  // first moment a caller's hit also starts a background refresh
    SteadyTime staleAt;    // expiry minus the safety skew: never handed out from here on
};

/// Safety skew: a tenth of the lifetime, at least 1 s where the lifetime allows (at most half
/// of it) and at most 30 s, so a token is not presented in its last moments (clock drift, time in
/// flight, a JWT `exp` in whole seconds). The refresh window before staleAt is a quarter of the
/// usable lifetime, at most 5 minutes, and starts at a per-token random point within its later
/// half (`jitter` in [0, 1]) so that a fleet started together spreads its refreshes.
inline TokenSchedule scheduleToken(SteadyTime received, Seconds lifetime, double jitter) {
    using Span = std::chrono::duration<double>;
    const Span total = lifetime;
    const Span floor = std::min(Span(1.0), total / 2.0);
    const Span skew = std::min(Span(30.0), std::max(floor, total / 10.0));
    const Span usable = total - skew;
    const Span window = std::min(Span(300.0), usable / 4.0);
    const Span refreshLead = window * (0.5 + 0.5 * std::clamp(jitter, 0.0, 1.0));
    const auto at = [&](Span offset) { return received + std::chrono::duration_cast<SteadyTime::duration>(offset); };
    return {at(usable - refreshLead), at(usable)};
}

/// Someone waiting for a key's token: a promise (the future API) or a completion handler (the
/// callback API). Completed exactly once, always outside the cache's locks.
class Waiter {
  public:
    using Handler = std::function<void(std::string header, std::exception_ptr error)>;

    Waiter() = default;
    explicit Waiter(std::promise<std::string> promise) : target_(std::move(promise)) {}
    explicit Waiter(Handler handler) : target_(std::move(handler)) {}

    void succeed(std::string&& header) noexcept {
        if (auto* promise = std::get_if<std::promise<std::string>>(&target_)) {
            promise->set_value(std::move(header));  // the result's storage exists: a move allocates nothing
        } else if (auto* handler = std::get_if<Handler>(&target_)) {
            invoke(*handler, std::move(header), nullptr);
        }
    }

    /// Gives the waiter its own copy; if even that cannot be made, the waiter gets the error.
    void succeed(const std::string& header) noexcept {
        std::string copy;
        try {
            copy = header;
        } catch (...) {
            return fail(std::current_exception());
        }
        succeed(std::move(copy));
    }

    void fail(std::exception_ptr error) noexcept {
        if (auto* promise = std::get_if<std::promise<std::string>>(&target_)) {
            promise->set_exception(std::move(error));
        } else if (auto* handler = std::get_if<Handler>(&target_)) {
            invoke(*handler, std::string(), std::move(error));
        }
    }

    // A throwing handler must not stop the other waiters of the same fetch from completing,
    // nor unwind the engine thread: its exception is dropped (the contract says: do not throw).
    static void invoke(Handler& handler, std::string header, std::exception_ptr error) noexcept {
        try {
            handler(std::move(header), std::move(error));
        } catch (...) {
        }
    }

  private:
    std::variant<std::monostate, std::promise<std::string>, Handler> target_;
};

class TokenCache {
  public:
    using Waiters = std::vector<Waiter>;

    enum class Acquired {
        Hit,         // `header` holds a valid token
        HitRefresh,  // as Hit, and the caller must start a background refresh for the key
        Joined,      // a fetch is in flight; the waiter was queued on it
        Fetch,       // nothing usable: the waiter was queued and the caller must start the fetch
        Failed,      // the key's last fetch failed and it is backing off: `failure` holds that error
    };

    explicit TokenCache(std::size_t capacity, RetryPolicy policy = {}) : capacity_(capacity), policy_(policy) {}

    /// The hit path: copies a valid token that is not yet due for refresh into `header`.
    /// Takes the shard's lock in shared mode only; allocates nothing but the copy.
    bool tryHit(const CacheKey& key, SteadyTime now, std::string& header) {
        Shard& shard = shardOf(key);
        std::shared_lock lock(shard.mutex);
        const auto found = shard.entries.find(key);
        if (found == shard.entries.end()) return false;
        Entry& entry = *found->second;
        if (!entry.token || now >= entry.schedule.refreshAt) return false;
        entry.touch(now);
        header = *entry.token;
        return true;
    }

    /// Everything tryHit does not settle, under the shard's exclusive lock: hands out a token
    /// (deciding whether this caller starts its background refresh), or queues `waiter` on the
    /// key's fetch (`waiter` is moved from only when queued). When the caller must start a fetch
    /// (Fetch, HitRefresh), `refused` receives the header the fetch must not bring back: the one it
    /// refreshes, or the last one retired by `invalidate`.
    Acquired acquire(const CacheKey& key, SteadyTime now, std::string& header, Waiter& waiter,
                     std::exception_ptr& failure, std::string* refused = nullptr) {
        Shard& shard = shardOf(key);
        std::unique_lock lock(shard.mutex);
        auto slot = shard.entries.try_emplace(key).first;
        if (!slot->second) {
            try {
                slot->second = std::make_unique<Entry>(now);
            } catch (...) {  // never leave an empty slot behind for the hit path to find
                shard.entries.erase(slot);
                throw;
            }
        }
        Entry& entry = *slot->second;
        entry.touch(now);
        if (entry.token && now < entry.schedule.staleAt) {
            header = *entry.token;
            if (now < entry.schedule.refreshAt || entry.fetching || now < entry.refreshRetryAt) {
                return Acquired::Hit;
            }
            if (refused) *refused = header;
            entry.fetching = true;  // last: nothing after it may throw
            return Acquired::HitRefresh;
        }
        if (entry.failure && !entry.fetching && now < entry.failedUntil) {
            failure = entry.failure;
            return Acquired::Failed;
        }
        if (!entry.fetching && refused) *refused = entry.retired;
        entry.waiters.push_back(std::move(waiter));
        if (entry.fetching) {
            return Acquired::Joined;
        }
        forgetRetiredLocked(entry);
        entry.fetching = true;  // last: nothing after it may throw
        return Acquired::Fetch;
    }

    /// Stores a fetched token (unless its lifetime is unknown or too short to serve) and returns
    /// the waiters to fulfil with `header`.
    Waiters completeWithToken(const CacheKey& key, const std::string& header, std::optional<Seconds> lifetime,
                              SteadyTime received, double jitter) {
        return completeWithToken(
            key, header, lifetime ? std::optional(scheduleToken(received, *lifetime, jitter)) : std::nullopt, received);
    }

    /// As above with the token's schedule worked out by the caller (a token from the shared
    /// store was received before `now`).
    Waiters completeWithToken(const CacheKey& key, const std::string& header, std::optional<TokenSchedule> schedule,
                              SteadyTime now) {
        const bool storable = capacity_ > 0 && schedule && schedule->staleAt > now;
        std::string copy = storable ? header : std::string();  // may throw: before the fetch ends
        Waiters waiters;
        bool stored = false;
        {
            Shard& shard = shardOf(key);
            std::unique_lock lock(shard.mutex);
            const auto found = shard.entries.find(key);
            if (found == shard.entries.end()) return waiters;
            Entry& entry = *found->second;
            endFetchLocked(entry, waiters);
            entry.refreshFailures = 0;
            entry.refreshRetryAt = {};
            forgetFailureLocked(entry);
            if (storable) {
                if (!entry.token) tokenCount_.fetch_add(1, std::memory_order_relaxed);
                entry.token = std::move(copy);
                entry.schedule = *schedule;
                stored = true;
            } else {
                eraseLocked(shard, found);
            }
        }
        if (stored) {
            evictBeyondCapacity(key, tokenCount_, [](const Entry& entry) { return entry.token.has_value(); });
        }
        return waiters;
    }

    /// Records a failed fetch and returns the waiters to fail with `error`. A token that is still
    /// valid keeps serving and its next refresh attempt is delayed. A key left without a valid
    /// token remembers the error for a short backoff (`jitter` in [0, 1]), during which callers
    /// get it at once instead of sending the failing server another request.
    Waiters completeWithError(const CacheKey& key, SteadyTime now, std::exception_ptr error, double jitter) {
        Waiters waiters;
        bool remembered = false;
        {
            Shard& shard = shardOf(key);
            std::unique_lock lock(shard.mutex);
            const auto found = shard.entries.find(key);
            if (found == shard.entries.end()) return waiters;
            Entry& entry = *found->second;
            endFetchLocked(entry, waiters);
            if (entry.token && now < entry.schedule.staleAt) {
                entry.refreshFailures += 1;
                entry.refreshRetryAt = now + policy_.refreshRetryDelay(entry.refreshFailures);
            } else if (capacity_ > 0 && error) {
                dropTokenLocked(entry);
                if (!entry.failure) failureCount_.fetch_add(1, std::memory_order_relaxed);
                entry.failure = std::move(error);
                entry.consecutiveFailures += 1;
                entry.failedUntil = now + policy_.failFastBackoff(entry.consecutiveFailures, jitter);
                remembered = true;
            } else {
                eraseLocked(shard, found);
            }
        }
        if (remembered) {
            evictBeyondCapacity(key, failureCount_, [](const Entry& entry) { return entry.failure != nullptr; });
        }
        return waiters;
    }

    /// Forgets the key's token and any remembered failure, so that the next caller fetches; with
    /// `refused`, only while the cached token is still that one (a hundred callers refused with the
    /// same token retire it once). Returns the header retired, if any: the next fetch of the key
    /// must not bring it back from the shared store. A fetch in flight stays in flight with its
    /// waiters (single flight still holds).
    std::optional<std::string> invalidate(const CacheKey& key, std::optional<std::string_view> refused = std::nullopt) {
        Shard& shard = shardOf(key);
        std::unique_lock lock(shard.mutex);
        const auto found = shard.entries.find(key);
        if (found == shard.entries.end()) return std::nullopt;
        Entry& entry = *found->second;
        if (refused && (!entry.token || *entry.token != *refused)) return std::nullopt;
        std::optional<std::string> retired = entry.token;
        forgetFailureLocked(entry);
        if (!retired) {
            if (!entry.fetching) eraseLocked(shard, found);
            return std::nullopt;
        }
        dropTokenLocked(entry);
        entry.retired = *retired;
        // An idle entry kept only to remember what was retired has a budget of its own.
        const bool idle = !entry.fetching && !entry.retiredOnly;
        if (idle) {
            entry.retiredOnly = true;
            retiredCount_.fetch_add(1, std::memory_order_relaxed);
        }
        lock.unlock();
        if (idle) evictBeyondCapacity(key, retiredCount_, [](const Entry& kept) { return kept.retiredOnly; });
        return retired;
    }

    /// Drops every entry and returns all queued waiters (used at shutdown).
    Waiters clear() {
        Waiters waiters;
        for (Shard& shard : shards_) {
            std::unique_lock lock(shard.mutex);
            for (auto& [key, entry] : shard.entries) {
                std::move(entry->waiters.begin(), entry->waiters.end(), std::back_inserter(waiters));
            }
            shard.entries.clear();
        }
        tokenCount_.store(0, std::memory_order_relaxed);
        failureCount_.store(0, std::memory_order_relaxed);
        retiredCount_.store(0, std::memory_order_relaxed);
        return waiters;
    }

    /// Number of tokens held (entries with only a fetch in flight are not counted).
    std::size_t size() const noexcept { return tokenCount_.load(std::memory_order_relaxed); }
    std::size_t capacity() const noexcept { return capacity_; }
    /// Tokens evicted so far to stay within the capacity.
    std::uint64_t evictions() const noexcept { return evictions_.load(std::memory_order_relaxed); }
    /// Number of keys remembering a failed fetch (each bounded by the capacity too).
    std::size_t rememberedFailures() const noexcept { return failureCount_.load(std::memory_order_relaxed); }

    /// Number of idle keys remembering only a retired token (bounded by the capacity too).
    std::size_t rememberedRetirements() const noexcept { return retiredCount_.load(std::memory_order_relaxed); }

    /// Whether a token for `key` is held (for tests and diagnostics).
    bool contains(const CacheKey& key) const {
        const Shard& shard = shardOf(key);
        std::shared_lock lock(shard.mutex);
        const auto found = shard.entries.find(key);
        return found != shard.entries.end() && found->second->token.has_value();
    }

  private:
    struct Entry {
        explicit Entry(SteadyTime now) : lastUsed(now.time_since_epoch().count()) {}

        // Recency for LRU, kept at millisecond resolution so that a hot key's hits do not
        // all write the same cache line.
        void touch(SteadyTime now) noexcept {
            const auto ticks = now.time_since_epoch().count();
            if (ticks - lastUsed.load(std::memory_order_relaxed) >= kTouchResolution) {
                lastUsed.store(ticks, std::memory_order_relaxed);
            }
        }

        std::optional<std::string> token;  // the ready header, "Bearer ..."
        std::string retired;               // the last header `invalidate` retired: never taken back
        bool retiredOnly = false;          // idle, kept only for `retired` (counted in retiredCount_)
        TokenSchedule schedule{};
        std::atomic<SteadyTime::rep> lastUsed;
        bool fetching = false;         // a cold fetch or a background refresh is in flight
        Waiters waiters;               // callers waiting on that fetch
        unsigned refreshFailures = 0;  // background refreshes failed since the last success
        SteadyTime refreshRetryAt{};
        std::exception_ptr failure;  // the last fetch's error, while the key has no valid token
        unsigned consecutiveFailures = 0;
        SteadyTime failedUntil{};  // until then, callers get `failure` at once
    };

    using EntryMap = std::unordered_map<CacheKey, std::unique_ptr<Entry>, CacheKeyHash>;

    struct alignas(64) Shard {  // own cache lines: shards must not share a lock's line
        mutable ReadMostlyMutex mutex;
        alignas(64) EntryMap entries;
    };

    static constexpr std::size_t kShardCount = 16;
    static constexpr SteadyTime::rep kTouchResolution =
        std::chrono::duration_cast<SteadyTime::duration>(std::chrono::milliseconds(1)).count();

    Shard& shardOf(const CacheKey& key) noexcept { return shards_[key[15] % kShardCount]; }
    const Shard& shardOf(const CacheKey& key) const noexcept { return shards_[key[15] % kShardCount]; }

    void eraseLocked(Shard& shard, EntryMap::iterator at) {
        dropTokenLocked(*at->second);
        forgetFailureLocked(*at->second);
        forgetRetiredLocked(*at->second);
        shard.entries.erase(at);
    }

    static void endFetchLocked(Entry& entry, Waiters& waiters) {
        waiters.swap(entry.waiters);
        entry.fetching = false;
    }

    void dropTokenLocked(Entry& entry) {
        if (!entry.token) return;
        entry.token.reset();
        tokenCount_.fetch_sub(1, std::memory_order_relaxed);
    }

    void forgetRetiredLocked(Entry& entry) noexcept {
        if (!entry.retiredOnly) return;
        entry.retiredOnly = false;
        retiredCount_.fetch_sub(1, std::memory_order_relaxed);
    }

    void forgetFailureLocked(Entry& entry) {
        if (entry.failure) failureCount_.fetch_sub(1, std::memory_order_relaxed);
        entry.failure = nullptr;
        entry.consecutiveFailures = 0;
        entry.failedUntil = {};
    }

    // Evicts the least recently used entries that `counted` selects until `count` fits the
    // capacity (tokens and remembered failures have a budget each, so failing keys never push
    // out valid tokens). Entries with a fetch in flight are never evicted: their waiters or
    // refresh would be lost, nor is `inserted`, the entry whose insertion triggered this (with
    // recency at millisecond resolution it may tie with older entries). Runs only on insertion,
    // so the O(n) scan is paid at network rate, never on a hit.
    template <class Counted>
    void evictBeyondCapacity(const CacheKey& inserted, const std::atomic<std::size_t>& count, Counted counted) {
        std::lock_guard evictionLock(evictionMutex_);
        while (count.load(std::memory_order_relaxed) > capacity_) {
            Shard* victimShard = nullptr;
            CacheKey victimKey{};
            SteadyTime::rep oldest = 0;
            for (Shard& shard : shards_) {
                std::shared_lock lock(shard.mutex);
                for (const auto& [key, entry] : shard.entries) {
                    if (entry->fetching || !counted(*entry) || key == inserted) continue;
                    const auto used = entry->lastUsed.load(std::memory_order_relaxed);
                    if (victimShard == nullptr || used < oldest) {
                        victimShard = &shard;
                        victimKey = key;
                        oldest = used;
                    }
                }
            }
            if (victimShard == nullptr) return;  // everything left is in flight: stay over for now
            std::unique_lock lock(victimShard->mutex);
            const auto victim = victimShard->entries.find(victimKey);
            if (victim != victimShard->entries.end() && !victim->second->fetching && counted(*victim->second)) {
                if (victim->second->token) evictions_.fetch_add(1, std::memory_order_relaxed);
                eraseLocked(*victimShard, victim);
            }
        }
    }

    const std::size_t capacity_;
    const RetryPolicy policy_;
    std::array<Shard, kShardCount> shards_;
    std::atomic<std::size_t> tokenCount_{0};
    std::atomic<std::size_t> failureCount_{0};
    std::atomic<std::size_t> retiredCount_{0};
    std::atomic<std::uint64_t> evictions_{0};
    std::mutex evictionMutex_;
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
