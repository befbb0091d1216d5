#pragma once

// The client's counters, read by AuthClient::stats(). Relaxed atomics: each is a tally, not a
// synchronisation point.

#include "../version.hpp"
#include "read_mostly_mutex.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

MCA_OAUTH_NAMESPACE_BEGIN
namespace detail {

struct Counters {
    ThreadTally hits;  // counted on the hit path: no shared line, no locked instruction
    std::atomic<std::uint64_t> misses{0}, fetches{0}, refreshes{0}, failures{0}, storeHits{0};
    std::atomic<std::size_t> inFlight{0};
};

}  // namespace detail
MCA_OAUTH_NAMESPACE_END
