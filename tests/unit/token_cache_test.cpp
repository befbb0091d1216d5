#include <mca/auth_client.hpp>

#include <gtest/gtest.h>

#include <limits>

namespace mca::detail {
namespace {

using namespace std::chrono_literals;

CacheKey keyOf(const std::string& name) { return KeyedDigest::forThisThread().field(name).finish(); }

struct CacheProbe {
    TokenCache& cache;
    SteadyTime now;
    std::exception_ptr failure = nullptr;  // set by acquire when it returns Failed

    TokenCache::Acquired acquire(const CacheKey& key, std::string* header = nullptr) {
        std::string out;
        Waiter waiter;
        const auto result = cache.acquire(key, now, out, waiter, failure);
        if (header) *header = out;
        return result;
    }
    // A fetch completes now with a token of the given lifetime; jitter 0 = latest refresh start.
    void store(const CacheKey& key, const std::string& header, Seconds lifetime = 3600s) {
        for (auto& waiter : cache.completeWithToken(key, header, lifetime, now, 0.0)) waiter.succeed(header);
    }
    void fill(const CacheKey& key, const std::string& header) {
        EXPECT_EQ(acquire(key), TokenCache::Acquired::Fetch);
        store(key, header);
    }
};

}  // namespace

TEST(TokenSchedule, ScalesTheSkewAndTheWindowWithTheLifetime) {
    const SteadyTime t0{};
    // One hour: 30 s skew, 5 min window, refresh starts between 2.5 and 5 min before staleAt.
    auto hour = scheduleToken(t0, 3600s, 0.0);
    EXPECT_EQ(hour.staleAt, t0 + 3570s);
    EXPECT_EQ(hour.refreshAt, t0 + 3570s - 150s);
    EXPECT_EQ(scheduleToken(t0, 3600s, 1.0).refreshAt, t0 + 3570s - 300s);
    // Ten seconds: 1 s skew, window of a quarter of the usable 9 s.
    auto shortLived = scheduleToken(t0, 10s, 1.0);
    EXPECT_EQ(shortLived.staleAt, t0 + 9s);
    EXPECT_EQ(shortLived.refreshAt, t0 + 9s - 2250ms);
    EXPECT_LT(scheduleToken(t0, 10s, 0.5).refreshAt, scheduleToken(t0, 10s, 0.0).refreshAt);
    // Zero lifetime: stale at once, never served from the cache.
    EXPECT_EQ(scheduleToken(t0, 0s, 0.3).staleAt, t0);
}

TEST(TokenCache, MissThenSingleFlightThenHit) {
    TokenCache cache(10);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    const auto key = keyOf("a");
    std::promise<std::string> firstPromise, secondPromise;
    auto firstFuture = firstPromise.get_future();
    auto secondFuture = secondPromise.get_future();
    Waiter first(std::move(firstPromise)), second(std::move(secondPromise));
    std::string header;
    EXPECT_EQ(cache.acquire(key, probe.now, header, first, probe.failure), TokenCache::Acquired::Fetch);
    EXPECT_EQ(cache.acquire(key, probe.now, header, second, probe.failure), TokenCache::Acquired::Joined);
    EXPECT_EQ(cache.size(), 0u);  // a fetch in flight is not a token
    probe.store(key, "Bearer A");
    EXPECT_EQ(firstFuture.get(), "Bearer A");
    EXPECT_EQ(secondFuture.get(), "Bearer A");
    EXPECT_EQ(probe.acquire(key, &header), TokenCache::Acquired::Hit);
    EXPECT_EQ(header, "Bearer A");
    EXPECT_EQ(cache.size(), 1u);
}

TEST(TokenCache, RefreshWindowStartsExactlyOneBackgroundRefresh) {
    TokenCache cache(10);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    const auto key = keyOf("a");
    probe.fill(key, "Bearer old");
    probe.now += 3600s - 30s - 150s;  // refreshAt with jitter 0
    std::string header;
    EXPECT_EQ(probe.acquire(key, &header), TokenCache::Acquired::HitRefresh);
    EXPECT_EQ(header, "Bearer old");
    EXPECT_EQ(probe.acquire(key, &header), TokenCache::Acquired::Hit);  // refresh already in flight
    EXPECT_EQ(header, "Bearer old");
    probe.store(key, "Bearer new");
    EXPECT_EQ(probe.acquire(key, &header), TokenCache::Acquired::Hit);
    EXPECT_EQ(header, "Bearer new");
}

TEST(TokenCache, FailedRefreshKeepsTheOldTokenAndBacksOff) {
    TokenCache cache(10);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    const auto key = keyOf("a");
    probe.fill(key, "Bearer old");
    probe.now += 3450s;  // past refreshAt (3420 s with jitter 0)
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::HitRefresh);
    EXPECT_TRUE(
        cache.completeWithError(key, probe.now, std::make_exception_ptr(Error(Errc::Network, "down")), 0.0).empty());
    std::string header;
    EXPECT_EQ(probe.acquire(key, &header), TokenCache::Acquired::Hit);  // backing off: no new refresh
    EXPECT_EQ(header, "Bearer old");
    probe.now += RetryPolicy{}.refreshRetryDelay(1);
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::HitRefresh);
}

TEST(TokenCache, NeverHandsOutAStaleToken) {
    TokenCache cache(10);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    const auto key = keyOf("a");
    probe.fill(key, "Bearer old");
    probe.now += 3570s;  // staleAt
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Fetch);
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Joined);
}

TEST(TokenCache, StaleTokenWithRefreshInFlightMakesCallersWait) {
    TokenCache cache(10);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    const auto key = keyOf("a");
    probe.fill(key, "Bearer old");
    probe.now += 3500s;
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::HitRefresh);
    probe.now += 100s;  // past staleAt while the refresh is still out
    std::promise<std::string> promise;
    auto future = promise.get_future();
    Waiter waiter(std::move(promise));
    std::string header;
    EXPECT_EQ(cache.acquire(key, probe.now, header, waiter, probe.failure), TokenCache::Acquired::Joined);
    auto failed = cache.completeWithError(key, probe.now, std::make_exception_ptr(Error(Errc::Network, "down")), 0.0);
    ASSERT_EQ(failed.size(), 1u);  // the refresh failed and the token is stale: the waiter fails
    EXPECT_EQ(cache.size(), 0u);
}

TEST(TokenCache, EvictsTheLeastRecentlyUsedToken) {
    TokenCache cache(3);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    const auto a = keyOf("a"), b = keyOf("b"), c = keyOf("c"), d = keyOf("d");
    for (const auto& key : {a, b, c}) {
        probe.fill(key, "Bearer");
        probe.now += 1s;
    }
    EXPECT_EQ(probe.acquire(a), TokenCache::Acquired::Hit);  // a is now the most recent; b the least
    probe.now += 1s;
    probe.fill(d, "Bearer");
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_TRUE(cache.contains(a));
    EXPECT_FALSE(cache.contains(b));
    EXPECT_TRUE(cache.contains(c));
    EXPECT_TRUE(cache.contains(d));
    probe.now += 1s;
    probe.fill(b, "Bearer");
    EXPECT_FALSE(cache.contains(c));
}

TEST(TokenCache, NeverEvictsTheTokenJustStoredEvenOnARecencyTie) {
    TokenCache cache(1);
    CacheProbe probe{cache, SteadyTime{} + 1h};  // the clock does not move: every stamp ties
    for (const char* name : {"a", "b", "c", "d", "e"}) {
        probe.fill(keyOf(name), "Bearer");
        EXPECT_TRUE(cache.contains(keyOf(name))) << name;
        EXPECT_EQ(cache.size(), 1u);
    }
    EXPECT_EQ(cache.evictions(), 4u);
}

TEST(TokenCache, DoesNotEvictAnEntryWhoseRefreshIsInFlight) {
    TokenCache cache(2);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    const auto a = keyOf("a"), b = keyOf("b"), c = keyOf("c");
    probe.fill(a, "Bearer");
    probe.fill(b, "Bearer");
    probe.now += 3500s;                                             // both in their refresh window
    EXPECT_EQ(probe.acquire(a), TokenCache::Acquired::HitRefresh);  // a's refresh stays in flight
    probe.now += 1s;
    EXPECT_EQ(probe.acquire(b), TokenCache::Acquired::HitRefresh);
    probe.store(b, "Bearer");  // b refreshed and more recent: a is the least recently used
    probe.now += 1s;
    probe.fill(c, "Bearer");
    EXPECT_TRUE(cache.contains(a));  // spared: its refresh is in flight
    EXPECT_FALSE(cache.contains(b));
    EXPECT_TRUE(cache.contains(c));
}

TEST(TokenCache, AFailedKeyFailsFastDuringItsBackoff) {
    TokenCache cache(10);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    const auto key = keyOf("a");
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Fetch);
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Joined);
    const auto refused = std::make_exception_ptr(Error(Errc::TokenGenerate, "refused", 401));
    EXPECT_EQ(cache.completeWithError(key, probe.now, refused, 1.0).size(), 2u);
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Failed);
    EXPECT_EQ(probe.failure, refused);  // the very error the shared fetch ended with
    probe.now += RetryPolicy{}.failFastBackoff(1, 1.0);
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Fetch);  // backoff over: one new attempt
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Joined);
    cache.completeWithError(key, probe.now, refused, 1.0);
    probe.now += RetryPolicy{}.failFastBackoff(1, 1.0);
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Failed);  // the second failure backs off longer
    probe.now += RetryPolicy{}.failFastBackoff(2, 1.0);
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Fetch);
    probe.store(key, "Bearer");
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Hit);
}

TEST(TokenCache, FailureBackoffIsShortBoundedAndJittered) {
    EXPECT_EQ(RetryPolicy{}.failFastBackoff(1, 1.0), 200ms);
    EXPECT_EQ(RetryPolicy{}.failFastBackoff(1, 0.0), 100ms);
    EXPECT_EQ(RetryPolicy{}.failFastBackoff(2, 1.0), 400ms);
    EXPECT_EQ(RetryPolicy{}.failFastBackoff(50, 1.0), 5000ms);
    EXPECT_LT(RetryPolicy{}.failFastBackoff(3, 0.2), RetryPolicy{}.failFastBackoff(3, 0.9));
}

TEST(TokenCache, RememberedFailuresHaveTheirOwnBoundAndNeverEvictTokens) {
    TokenCache cache(2);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    probe.fill(keyOf("token-1"), "Bearer");
    probe.fill(keyOf("token-2"), "Bearer");
    for (int i = 0; i < 10; ++i) {
        probe.now += 1ms;
        const auto key = keyOf("failing-" + std::to_string(i));
        EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Fetch);
        cache.completeWithError(key, probe.now, std::make_exception_ptr(Error(Errc::Network, "down")), 1.0);
    }
    EXPECT_EQ(cache.size(), 2u);
    EXPECT_EQ(cache.rememberedFailures(), 2u);
    EXPECT_EQ(probe.acquire(keyOf("failing-9")), TokenCache::Acquired::Failed);
    EXPECT_EQ(probe.acquire(keyOf("failing-0")), TokenCache::Acquired::Fetch);  // evicted, though still in backoff
}

TEST(TokenCache, SizeZeroCachesNothingButStillSharesAFetch) {
    TokenCache cache(0);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    const auto key = keyOf("a");
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Fetch);
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Joined);
    probe.store(key, "Bearer");
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_EQ(probe.acquire(key), TokenCache::Acquired::Fetch);
}

TEST(TokenCache, TokensWithoutAKnownLifetimeAreDeliveredButNotKept) {
    TokenCache cache(10);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    const auto key = keyOf("a");
    std::promise<std::string> promise;
    auto future = promise.get_future();
    Waiter waiter(std::move(promise));
    std::string header;
    ASSERT_EQ(cache.acquire(key, probe.now, header, waiter, probe.failure), TokenCache::Acquired::Fetch);
    for (auto& w : cache.completeWithToken(key, "Bearer once", std::nullopt, probe.now, 0.5)) w.succeed("Bearer once");
    EXPECT_EQ(future.get(), "Bearer once");
    EXPECT_FALSE(cache.contains(key));
}

TEST(TokenCache, ClearHandsBackEveryWaiter) {
    TokenCache cache(10);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    probe.acquire(keyOf("a"));
    probe.acquire(keyOf("a"));
    probe.acquire(keyOf("b"));
    EXPECT_EQ(cache.clear().size(), 3u);
}

}  // namespace mca::detail

namespace mca::detail {
namespace {

using namespace std::chrono_literals;

/// A clock fixed at one moment on both time lines.
class FixedClock final : public Clock {
  public:
    std::chrono::steady_clock::time_point steadyNow() const override { return steady; }
    std::chrono::system_clock::time_point systemNow() const override { return system; }
    std::chrono::steady_clock::time_point steady = std::chrono::steady_clock::time_point{} + 10h;
    std::chrono::system_clock::time_point system = std::chrono::system_clock::now();
};

TEST(TokenSchedule, TheSkewHasAFloorOfOneSecondWhereTheLifetimeAllows) {
    const SteadyTime t0{};
    EXPECT_EQ(scheduleToken(t0, 3s, 0.0).staleAt, t0 + 2s);     // a tenth would be 0.3 s
    EXPECT_EQ(scheduleToken(t0, 1s, 0.0).staleAt, t0 + 500ms);  // at most half the lifetime
    EXPECT_EQ(scheduleToken(t0, 20s, 0.0).staleAt, t0 + 18s);   // a tenth above the floor
}

TEST(StoredToken, IsScheduledFromWhenItsReplyArrivedNotFromWhatIsLeft) {
    FixedClock clock;
    // A one-hour token read from the store with 31 s left: its skew is 30 s, as for the instance
    // that fetched it, so it has 1 s left to serve and its refresh window is already open.
    const SharedToken token{"Bearer t", clock.system + 31s, clock.system - 3569s};
    const auto schedule = storedTokenSchedule(token, clock, 0.0);
    EXPECT_EQ(schedule.staleAt, clock.steady + 1s);
    EXPECT_LT(schedule.refreshAt, clock.steady);
}

TEST(StoredToken, LifetimesAreClampedLikeFetchedOnes) {
    FixedClock clock;
    const SharedToken forever{"Bearer t", clock.system + std::chrono::hours(24 * 3650), clock.system};
    EXPECT_LE(storedTokenSchedule(forever, clock, 0.0).staleAt, clock.steady + kMaxTokenLifetime);
    // Issued "in the future" by a skewed clock: counted from now.
    const SharedToken early{"Bearer t", clock.system + 2h, clock.system + 1h};
    EXPECT_EQ(storedTokenSchedule(early, clock, 0.0).staleAt, clock.steady + 2h - 30s);
    // Sealed without its issue time: what is left of it is all that is known.
    const SharedToken legacy{"Bearer t", clock.system + 100s, std::nullopt};
    EXPECT_EQ(storedTokenSchedule(legacy, clock, 0.0).staleAt, clock.steady + 90s);
}

TEST(RetryPolicy, DefaultsAreTheDocumentedOnesAndOptionsAreClamped) {
    const RetryPolicy defaults;
    EXPECT_EQ(defaults.attemptBackoff(1, 1.0), 100ms);
    EXPECT_EQ(defaults.attemptBackoff(2, 1.0), 200ms);
    EXPECT_EQ(defaults.attemptBackoff(40, 1.0), 3200ms);
    EXPECT_EQ(defaults.attemptBackoff(1, 0.0), 50ms);
    EXPECT_EQ(defaults.refreshRetryDelay(1), 1s);
    EXPECT_EQ(defaults.refreshRetryDelay(100), 64s);
    EXPECT_TRUE(defaults.mayAttemptAgain(1000));
    EXPECT_EQ(defaults.leaseLength(), 1s);
    EXPECT_EQ(defaults.leaseWait(), 5s);
    EXPECT_EQ(defaults.storeWait(), 2500ms);

    RetryOptions retry;
    retry.initialBackoff = -5ms;
    retry.maxBackoff = 0ms;
    retry.maxAttempts = 2;
    FleetOptions fleet;
    fleet.leaseLength = 0ms;
    fleet.leaseWaitShare = std::numeric_limits<double>::quiet_NaN();
    fleet.storeShare = 7.0;
    const RetryPolicy custom(retry, fleet, std::chrono::milliseconds::max());
    EXPECT_EQ(custom.timeout(), kLongestTimeout);
    EXPECT_EQ(custom.attemptBackoff(1, 1.0), 1ms);
    EXPECT_EQ(custom.attemptBackoff(9, 1.0), 1ms);
    EXPECT_TRUE(custom.mayAttemptAgain(1));
    EXPECT_FALSE(custom.mayAttemptAgain(2));
    EXPECT_EQ(custom.leaseLength(), 30ms);
    EXPECT_EQ(custom.leaseWait(), kLongestTimeout / 2);
    EXPECT_EQ(custom.storeWait(), kLongestTimeout / 2);
    EXPECT_EQ(RetryPolicy({}, {}, -1s).timeout(), 0ms);
}

}  // namespace
}  // namespace mca::detail

namespace mca::detail {
namespace {

using namespace std::chrono_literals;

TEST(TokenCache, ARetiredTokenIsNeverTakenBackAndItsMemoryIsBounded) {
    TokenCache cache(2);
    CacheProbe probe{cache, SteadyTime{} + 1h};
    for (int i = 0; i < 5; ++i) {
        const auto key = keyOf("retired-" + std::to_string(i));
        probe.fill(key, "Bearer old-" + std::to_string(i));
        EXPECT_EQ(cache.invalidate(key, std::string_view("Bearer someone-else")), std::nullopt);  // not that token
        EXPECT_EQ(cache.invalidate(key, std::string_view("Bearer old-" + std::to_string(i))),
                  "Bearer old-" + std::to_string(i));
        EXPECT_EQ(cache.invalidate(key, std::string_view("Bearer old-" + std::to_string(i))), std::nullopt);  // once
    }
    EXPECT_LE(cache.rememberedRetirements(), 2u);
    // The next fetch of the last key is told which header not to bring back from the store.
    const auto last = keyOf("retired-4");
    std::string header, refused;
    Waiter waiter;
    std::exception_ptr failure;
    EXPECT_EQ(cache.acquire(last, probe.now, header, waiter, failure, &refused), TokenCache::Acquired::Fetch);
    EXPECT_EQ(refused, "Bearer old-4");
    EXPECT_LE(cache.rememberedRetirements(), 1u);
}

}  // namespace
}  // namespace mca::detail
