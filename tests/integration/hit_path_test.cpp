// A cache hit allocates the returned string and the future's shared state, nothing more:
// exactly as many allocations as copying the header through a promise and its future.
// Counted with a replaced global operator new (this test binary's only one).

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <new>

namespace {
thread_local std::size_t allocationsOnThisThread = 0;
thread_local long failAllocationAfter = -1;  // >= 0: that many more succeed on this thread, then one throws
}  // namespace

void* operator new(std::size_t size) {
    ++allocationsOnThisThread;
    if (failAllocationAfter == 0) {
        failAllocationAfter = -1;
        throw std::bad_alloc();
    }
    if (failAllocationAfter > 0) --failAllocationAfter;
    if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    ++allocationsOnThisThread;
    return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return ::operator new(size, tag); }
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete[](void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t) noexcept { std::free(memory); }

namespace mca::test {
namespace {

template <class Call>
std::size_t allocationsPerCall(Call&& call) {
    call();  // warm up: the thread's digest buffer, the cache entry
    constexpr std::size_t kCalls = 100;
    const std::size_t before = allocationsOnThisThread;
    for (std::size_t i = 0; i < kCalls; ++i) call();
    return (allocationsOnThisThread - before + kCalls - 1) / kCalls;
}

TEST(HitPath, AllocatesOnlyTheHeaderAndTheSharedState) {
    ServerFixture fixture;
    fixture.server.setTokenPadding(1024);  // a token well past any small-string buffer
    AuthClient client(optionsFor(fixture.credentials()));
    const std::string first = client.getAuthorizationHeader().get();
    ASSERT_GT(first.size(), 1024u);
    const Credentials tenant = fixture.credentials();

    // The floor: copy the header into a promise and take it out of its future (libstdc++'s
    // promise allocates its shared state and its result slot separately).
    const std::size_t floor = allocationsPerCall([&] {
        std::promise<std::string> promise;
        promise.set_value(std::string(first));
        EXPECT_EQ(promise.get_future().get().size(), first.size());
    });
    EXPECT_EQ(allocationsPerCall([&] { EXPECT_EQ(client.getAuthorizationHeader().get().size(), first.size()); }),
              floor);
    EXPECT_EQ(allocationsPerCall([&] { EXPECT_EQ(client.getAuthorizationHeader(tenant).get().size(), first.size()); }),
              floor);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
}

// Wherever an allocation fails on a caller's thread during a miss, the call still completes (with
// the header or the error) and the key is never left marked as fetching with nobody to finish it.
TEST(AllocationFailure, NeverStrandsAKeyOrItsCallers) {
    ServerFixture fixture;
    Options options;
    options.cacheSize = 0;  // every call is a miss: the whole fetch start runs each time
    AuthClient client(options);
    const Credentials tenant = fixture.credentials();
    int failuresSeen = 0;
    for (long after = 0; after < 120; ++after) {
        std::future<std::string> future;
        failAllocationAfter = after;
        try {
            future = client.getAuthorizationHeader(tenant);
        } catch (const std::bad_alloc&) {  // only when even the failed future could not be made
        }
        std::promise<bool> handled;
        const bool injectedAlready = failAllocationAfter < 0;
        if (!injectedAlready) {
            try {
                client.getAuthorizationHeader(tenant, [&](std::string, std::exception_ptr error) {
                    handled.set_value(error == nullptr);
                });
            } catch (const std::bad_alloc&) {
                handled.set_value(false);
            }
        } else {
            handled.set_value(true);
        }
        const bool injected = failAllocationAfter < 0;
        failAllocationAfter = -1;
        if (future.valid()) {
            ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "after " << after;
            try {
                future.get();
            } catch (const std::exception&) {
                ++failuresSeen;
            }
        }
        ASSERT_EQ(handled.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready) << after;
        // The key is usable again at once.
        auto next = client.getAuthorizationHeader(tenant);
        ASSERT_EQ(next.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "after " << after;
        EXPECT_EQ(next.get().rfind("Bearer ", 0), 0u) << "after " << after;
        if (!injected) break;  // the calls needed fewer allocations than `after`: all points covered
    }
    EXPECT_GT(failuresSeen, 0);
}

}  // namespace
}  // namespace mca::test
