// Many threads against one client: single flight, shutdown with fetches in flight, and a stress
// run (many tenants, evictions, short tokens, a failing server) that CI runs under ThreadSanitizer.

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace mca::test {
namespace {

using namespace std::chrono_literals;

TEST(Concurrency, SingleFlightManyThreadsOneColdKeyOneRequest) {
    ServerFixture fixture;
    fixture.server.setDelay(200ms);  // keep the fetch in flight while every thread arrives
    AuthClient client(optionsFor(fixture.credentials()));
    constexpr int kThreads = 64;
    std::vector<std::future<std::string>> futures(kThreads);
    std::vector<std::thread> threads;
    std::atomic<bool> go{false};
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&, i] {
            while (!go.load()) std::this_thread::yield();
            futures[i] = client.getAuthorizationHeader();
        });
    }
    go = true;
    for (auto& thread : threads) thread.join();
    const std::string first = futures.front().get();
    for (int i = 1; i < kThreads; ++i) EXPECT_EQ(futures[i].get(), first);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
}

TEST(Concurrency, SingleFlightSharesFailuresToo) {
    ServerFixture fixture;
    Reply refusal;
    refusal.action = Action::Status;
    refusal.status = 403;
    refusal.delay = 200ms;
    fixture.server.pushReply(refusal);
    auto clock = std::make_shared<ManualClock>();
    Options options = optionsFor(fixture.credentials());
    options.clock = clock;
    AuthClient client(options);
    std::vector<std::future<std::string>> futures;
    for (int i = 0; i < 50; ++i) futures.push_back(client.getAuthorizationHeader());
    for (auto& future : futures) EXPECT_EQ(errorOf(std::move(future)).httpStatus(), 403);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
    clock->advance(std::chrono::seconds(6));                 // past the key's failure backoff
    EXPECT_NO_THROW(client.getAuthorizationHeader().get());  // the fault cleared: next call succeeds
}

TEST(Concurrency, ManyTenantsFetchConcurrentlyOnOneEngineThread) {
    ServerFixture fixture;
    fixture.server.setDelay(300ms);
    AuthClient client;
    std::vector<Credentials> tenants;
    for (int i = 0; i < 50; ++i) tenants.push_back(fixture.tenant(i));
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::future<std::string>> futures;
    for (const auto& tenant : tenants) futures.push_back(client.getAuthorizationHeader(tenant));
    for (auto& future : futures) EXPECT_NO_THROW(future.get());
    // Sequential fetches would take 50 x 300 ms; a generous bound that only catches serialisation.
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
    EXPECT_EQ(fixture.server.tokenRequests(), 50u);
}

TEST(Concurrency, DestroyingTheClientFailsPendingFuturesWithShutdown) {
    ServerFixture fixture;
    Reply hang;
    hang.action = Action::Hang;
    fixture.server.setDefaultReply(hang);
    std::vector<std::future<std::string>> futures;
    {
        Options options;
        options.timeout = 60s;
        AuthClient client(options);
        for (int i = 0; i < 200; ++i) futures.push_back(client.getAuthorizationHeader(fixture.tenant(i)));
        for (int i = 0; i < 20; ++i) futures.push_back(client.getAuthorizationHeader(fixture.tenant(0)));
        for (int i = 0; i < 100 && fixture.server.tokenRequests() < 200; ++i) std::this_thread::sleep_for(10ms);
    }
    for (auto& future : futures) {
        ASSERT_EQ(future.wait_for(0s), std::future_status::ready);  // the destructor completed them all
        const Error error = errorOf(std::move(future));
        EXPECT_EQ(error.code(), Errc::Shutdown) << error.what();
    }
}

TEST(Concurrency, ReadMostlyMutexExcludesWritersFromReaders) {
    detail::ReadMostlyMutex mutex;
    int guarded = 0;  // plain int: ThreadSanitizer reports any access the lock fails to order
    std::atomic<int> readersInside{0};
    std::atomic<bool> broken{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 20000; ++i) {
                if ((i + t) % 50 == 0) {
                    std::unique_lock lock(mutex);
                    if (readersInside.load() != 0) broken = true;
                    ++guarded;
                } else {
                    std::shared_lock lock(mutex);
                    readersInside.fetch_add(1);
                    if (guarded < 0) broken = true;
                    readersInside.fetch_sub(1);
                }
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_FALSE(broken.load());
    EXPECT_EQ(guarded, 6 * 20000 / 50);
}

TEST(Concurrency, StressManyThreadsTenantsEvictionsShortTokensAndFaults) {
    ServerFixture fixture;
    fixture.server.setExpiresIn(1);  // tokens expiring every second
    fixture.server.setFailEvery(5);
    constexpr int kTenants = 12;
    std::vector<Credentials> tenants;
    for (int i = 0; i < kTenants; ++i) tenants.push_back(fixture.tenant(i));
    Options options;
    options.cacheSize = 4;  // far fewer slots than tenants: constant eviction
    options.timeout = 5s;
    AuthClient client(options);

    constexpr int kThreads = 8;
    constexpr int kCallsPerThread = 300;
    std::atomic<int> headers{0}, failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kCallsPerThread; ++i) {
                const Credentials& tenant = tenants[(t * 7 + i) % kTenants];
                try {
                    const std::string header = client.getAuthorizationHeader(tenant).get();
                    EXPECT_EQ(header.rfind("Bearer ey", 0), 0u);
                    headers.fetch_add(1);
                } catch (const Error& error) {
                    // 503 every fifth request is retried within the budget; nothing should surface.
                    ADD_FAILURE() << error.what();
                    failures.fetch_add(1);
                }
                if (i % 50 == 0) std::this_thread::sleep_for(5ms);
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(headers.load(), kThreads * kCallsPerThread);
    EXPECT_EQ(failures.load(), 0);
    EXPECT_LE(client.cachedTokens(), 4u);
    EXPECT_LT(fixture.server.tokenRequests(), std::size_t(kThreads * kCallsPerThread));
}

}  // namespace
}  // namespace mca::test
