// Caching against the real server: hits, tenant isolation, expiry and refresh ahead. The
// client's clock is a ManualClock, so lifetimes pass without sleeping.

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace mca::test {
namespace {

using namespace std::chrono_literals;

struct ClockedClient {
    explicit ClockedClient(const Credentials& credentials, std::size_t cacheSize = 100) {
        Options options = optionsFor(credentials);
        options.clock = clock;
        options.cacheSize = cacheSize;
        options.timeout = 5s;
        client = std::make_unique<AuthClient>(options);
    }
    std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
    std::unique_ptr<AuthClient> client;
};

/// Waits (bounded) until the server has seen `count` token requests: background refreshes
/// complete on the engine thread, after the caller already has its answer.
bool waitForTokenRequests(const McaTestServer& server, std::size_t count) {
    for (int i = 0; i < 500 && server.tokenRequests() < count; ++i) std::this_thread::sleep_for(10ms);
    return server.tokenRequests() >= count;
}

TEST(Cache, SecondCallIsAHitWithoutARequest) {
    ServerFixture fixture;
    AuthClient client(optionsFor(fixture.credentials()));
    const std::string first = client.getAuthorizationHeader().get();
    EXPECT_EQ(client.getAuthorizationHeader().get(), first);
    EXPECT_EQ(client.getAuthorizationHeader(fixture.credentials()).get(), first);  // same key either way
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
    EXPECT_EQ(client.cachedTokens(), 1u);
}

TEST(Cache, AWrongSecretNeverGetsTheCachedToken) {
    ServerFixture fixture;
    AuthClient client;
    const std::string right = client.getAuthorizationHeader(fixture.credentials()).get();
    Credentials wrong = fixture.credentials();
    wrong.secret = std::string(kSecret) + "x";
    const Error error = errorOf(client.getAuthorizationHeader(wrong));
    EXPECT_EQ(error.code(), Errc::TokenGenerate);
    EXPECT_EQ(error.httpStatus(), 401);
    EXPECT_EQ(client.getAuthorizationHeader(fixture.credentials()).get(), right);  // still cached
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
}

TEST(Cache, TenantsAreCachedSeparately) {
    ServerFixture fixture;
    AuthClient client;
    const Credentials a = fixture.tenant(1), b = fixture.tenant(2);
    const std::string tokenA = client.getAuthorizationHeader(a).get();
    const std::string tokenB = client.getAuthorizationHeader(b).get();
    EXPECT_NE(tokenA, tokenB);
    EXPECT_EQ(decodeJwtPayload(accessTokenOf(tokenB))["aud"], "tenant-2");
    EXPECT_EQ(client.getAuthorizationHeader(a).get(), tokenA);
    Credentials otherServerUrl = a;
    otherServerUrl.serverUrl = "http://localhost:" + std::to_string(fixture.server.port()) + "/imf-authserver";
    EXPECT_NE(client.getAuthorizationHeader(otherServerUrl).get(), tokenA);  // the URL is part of the key
    EXPECT_EQ(fixture.server.tokenRequests(), 3u);
}

TEST(Cache, EvictsTheLeastRecentlyUsedTenantBeyondCacheSize) {
    ServerFixture fixture;
    ClockedClient clocked(fixture.credentials(), 2);
    AuthClient& client = *clocked.client;
    const Credentials a = fixture.tenant(1), b = fixture.tenant(2), c = fixture.tenant(3);
    client.getAuthorizationHeader(a).get();
    clocked.clock->advance(1s);
    client.getAuthorizationHeader(b).get();
    clocked.clock->advance(1s);
    client.getAuthorizationHeader(a).get();  // hit: a is now more recent than b
    clocked.clock->advance(1s);
    client.getAuthorizationHeader(c).get();  // evicts b
    EXPECT_EQ(client.cachedTokens(), 2u);
    EXPECT_EQ(fixture.server.tokenRequests(), 3u);
    client.getAuthorizationHeader(a).get();
    client.getAuthorizationHeader(c).get();
    EXPECT_EQ(fixture.server.tokenRequests(), 3u);
    client.getAuthorizationHeader(b).get();
    EXPECT_EQ(fixture.server.tokenRequests(), 4u);
}

TEST(Cache, RefreshesAheadWithoutMakingTheCallerWait) {
    ServerFixture fixture;
    fixture.server.setExpiresIn(100);
    ClockedClient clocked(fixture.credentials());
    const std::string first = clocked.client->getAuthorizationHeader().get();
    clocked.clock->advance(86s);     // inside the window (usable 90 s, window 22.5 s) whatever the jitter
    fixture.server.setDelay(300ms);  // a slow refresh: callers must not notice
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(clocked.client->getAuthorizationHeader().get(), first);  // old token at once
    }
    ASSERT_TRUE(waitForTokenRequests(fixture.server, 2));
    std::string refreshed = first;
    for (int i = 0; i < 200 && refreshed == first; ++i) {
        std::this_thread::sleep_for(10ms);
        refreshed = clocked.client->getAuthorizationHeader().get();
    }
    EXPECT_NE(refreshed, first);
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);  // exactly one background refresh
}

TEST(Cache, AFailedRefreshDisturbsNoCallerAndIsRetriedLater) {
    ServerFixture fixture;
    fixture.server.setExpiresIn(1000);
    ClockedClient clocked(fixture.credentials());
    const std::string first = clocked.client->getAuthorizationHeader().get();
    Reply refusal;
    refusal.action = Action::Status;
    refusal.status = 401;
    fixture.server.pushReply(refusal);
    clocked.clock->advance(900s);  // in the window: usable 970 s, window 242 s
    EXPECT_EQ(clocked.client->getAuthorizationHeader().get(), first);
    ASSERT_TRUE(waitForTokenRequests(fixture.server, 2));
    std::this_thread::sleep_for(50ms);
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(clocked.client->getAuthorizationHeader().get(), first);  // backing off: no new request
    }
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
    clocked.clock->advance(5s);  // past the first backoff step
    EXPECT_EQ(clocked.client->getAuthorizationHeader().get(), first);
    ASSERT_TRUE(waitForTokenRequests(fixture.server, 3));
}

TEST(Cache, AnExpiredTokenIsNeverHandedOut) {
    ServerFixture fixture;
    fixture.server.setExpiresIn(60);
    ClockedClient clocked(fixture.credentials());
    const std::string first = clocked.client->getAuthorizationHeader().get();
    clocked.clock->advance(54s);  // staleAt = 60 s - 6 s skew
    const std::string second = clocked.client->getAuthorizationHeader().get();
    EXPECT_NE(second, first);
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
}

TEST(Cache, ZeroLifetimeTokensAreDeliveredButNotCached) {
    ServerFixture fixture;
    fixture.server.setExpiresIn(0);
    AuthClient client(optionsFor(fixture.credentials()));
    EXPECT_NO_THROW(client.getAuthorizationHeader().get());
    EXPECT_NO_THROW(client.getAuthorizationHeader().get());
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
    EXPECT_EQ(client.cachedTokens(), 0u);
}

TEST(Cache, HugeExpiresInIsClamped) {
    ServerFixture fixture;
    Reply reply;
    reply.expiresIn = 9'000'000'000LL;
    fixture.server.pushReply(reply);
    ClockedClient clocked(fixture.credentials());
    const std::string first = clocked.client->getAuthorizationHeader().get();
    clocked.clock->advance(25h);
    EXPECT_NE(clocked.client->getAuthorizationHeader().get(), first);
}

}  // namespace
}  // namespace mca::test
