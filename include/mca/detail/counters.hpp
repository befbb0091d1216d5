#pragma once

// The client's counters, read by AuthClient::stats(). Relaxed atomics: each is a tally, not a
// synchronisation point.

#include "read_mostly_mutex.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mca::detail {

struct Counters {
    ThreadTally hits;  // counted on the hit path: no shared line, no locked instruction
    std::atomic<std::uint64_t> misses{0}, fetches{0}, refreshes{0}, failures{0}, storeHits{0};
    std::atomic<std::size_t> inFlight{0};
};

}  // namespace mca::detail
