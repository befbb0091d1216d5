#pragma once

// The client's counters, read by AuthClient::stats(). Relaxed atomics: each is a tally, not a
// synchronisation point.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>

namespace mca::detail {

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

}  // namespace mca::detail
