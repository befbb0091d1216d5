// The API beyond the Node SDK: completion handlers for event loops, invalidation after a 401,
// statistics and the log handler.

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace mca::test {
namespace {

using namespace std::chrono_literals;

/// Collects one handler call and the thread it ran on.
struct HandlerProbe {
    HeaderHandler handler() {
        return [this](std::string header, std::exception_ptr error) {
            std::lock_guard lock(mutex);
            result = std::move(header);
            failure = std::move(error);
            thread = std::this_thread::get_id();
            done = true;
            changed.notify_all();
        };
    }
    bool wait() {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, 10s, [&] { return done; });
    }
    std::mutex mutex;
    std::condition_variable changed;
    bool done = false;
    std::string result;
    std::exception_ptr failure;
    std::thread::id thread;
};

TEST(Callbacks, AMissRunsTheHandlerOnTheEngineThreadAHitRunsItInline) {
    ServerFixture fixture;
    AuthClient client(optionsFor(fixture.credentials()));
    HandlerProbe miss;
    client.getAuthorizationHeader(miss.handler());
    ASSERT_TRUE(miss.wait());
    EXPECT_FALSE(miss.failure);
    EXPECT_EQ(miss.result, "Bearer " + fixture.server.lastIssuedToken());
    EXPECT_NE(miss.thread, std::this_thread::get_id());

    HandlerProbe hit;
    client.getAuthorizationHeader(fixture.credentials(), hit.handler());
    EXPECT_TRUE(hit.done);  // completed before the call returned
    EXPECT_EQ(hit.thread, std::this_thread::get_id());
    EXPECT_EQ(hit.result, miss.result);
}

TEST(Callbacks, ErrorsGoToTheHandler) {
    ServerFixture fixture;
    AuthClient client;
    HandlerProbe missing;
    client.getAuthorizationHeader(Credentials{"", kClientId, kSecret, fixture.server.baseUrl()}, missing.handler());
    ASSERT_TRUE(missing.done);  // inline: nothing to wait for
    EXPECT_TRUE(missing.result.empty());
    try {
        std::rethrow_exception(missing.failure);
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), Errc::MissingAppId);
    }

    Credentials wrong = fixture.credentials();
    wrong.secret = "wrong";
    HandlerProbe refused;
    client.getAuthorizationHeader(wrong, refused.handler());
    ASSERT_TRUE(refused.wait());
    try {
        std::rethrow_exception(refused.failure);
    } catch (const Error& error) {
        EXPECT_EQ(error.httpStatus(), 401);
    }
}

TEST(Callbacks, AThrowingHandlerDoesNotStopTheOthers) {
    ServerFixture fixture;
    fixture.server.setDelay(100ms);
    AuthClient client(optionsFor(fixture.credentials()));
    client.getAuthorizationHeader([](std::string, std::exception_ptr) { throw std::runtime_error("handler bug"); });
    HandlerProbe after;
    client.getAuthorizationHeader(after.handler());
    ASSERT_TRUE(after.wait());
    EXPECT_FALSE(after.failure);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);  // both joined one fetch
}

TEST(Invalidate, TheNextCallFetchesANewToken) {
    ServerFixture fixture;
    AuthClient client;
    const std::string first = client.getAuthorizationHeader(fixture.credentials()).get();
    client.invalidate(fixture.credentials());
    const std::string second = client.getAuthorizationHeader(fixture.credentials()).get();
    EXPECT_NE(second, first);
    EXPECT_EQ(client.getAuthorizationHeader(fixture.credentials()).get(), second);
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
    Credentials unknown = fixture.credentials();
    unknown.appId = "never-fetched";
    client.invalidate(unknown);  // harmless
}

TEST(Invalidate, CallersDuringAFetchStillShareIt) {
    ServerFixture fixture;
    fixture.server.setDelay(200ms);
    AuthClient client;
    auto first = client.getAuthorizationHeader(fixture.credentials());
    client.invalidate(fixture.credentials());
    auto second = client.getAuthorizationHeader(fixture.credentials());
    EXPECT_EQ(first.get(), second.get());
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
}

TEST(Stats, CountWhatHappened) {
    ServerFixture fixture;
    fixture.server.setExpiresIn(100);
    auto clock = std::make_shared<ManualClock>();
    Options options = optionsFor(fixture.credentials());
    options.clock = clock;
    options.cacheSize = 1;
    AuthClient client(options);
    EXPECT_EQ(client.stats().fetches, 0u);

    client.getAuthorizationHeader().get();                   // miss, fetch
    client.getAuthorizationHeader().get();                   // hit
    client.getAuthorizationHeader(fixture.tenant(1)).get();  // miss, fetch, evicts the first token
    Credentials wrong = fixture.credentials();
    wrong.secret = "wrong";
    EXPECT_THROW(client.getAuthorizationHeader(wrong).get(), Error);  // miss, fetch, failure
    clock->advance(86s);                                              // tenant 1 in its refresh window
    client.getAuthorizationHeader(fixture.tenant(1)).get();           // hit, background refresh
    for (int i = 0; i < 500 && client.stats().inFlight > 0; ++i) std::this_thread::sleep_for(10ms);

    const Stats stats = client.stats();
    EXPECT_EQ(stats.hits, 2u);
    EXPECT_EQ(stats.misses, 3u);
    EXPECT_EQ(stats.fetches, 4u);
    EXPECT_EQ(stats.refreshes, 1u);
    EXPECT_EQ(stats.failures, 1u);
    EXPECT_EQ(stats.evictions, 1u);
    EXPECT_EQ(stats.inFlight, 0u);
    EXPECT_EQ(stats.cachedTokens, 1u);
}

TEST(Logging, ReportsFetchesRetriesAndFailuresWithoutSecrets) {
    ServerFixture fixture;
    Reply unavailable;
    unavailable.action = Action::Status;
    unavailable.status = 503;
    fixture.server.pushReply(unavailable);
    std::mutex mutex;
    std::vector<std::pair<LogLevel, std::string>> lines;
    Options options = optionsFor(fixture.credentials());
    options.log = [&](LogLevel level, std::string_view message) {
        std::lock_guard lock(mutex);
        lines.emplace_back(level, std::string(message));
    };
    AuthClient client(options);
    const std::string token = accessTokenOf(client.getAuthorizationHeader().get());
    Credentials wrong = fixture.credentials();
    wrong.secret = "wrong-secret-value";
    EXPECT_THROW(client.getAuthorizationHeader(wrong).get(), Error);

    std::lock_guard lock(mutex);
    const auto has = [&](LogLevel level, const char* text) {
        return std::any_of(lines.begin(), lines.end(), [&](const auto& line) {
            return line.first == level && line.second.find(text) != std::string::npos;
        });
    };
    EXPECT_TRUE(has(LogLevel::Debug, "fetching the token for appId"));
    EXPECT_TRUE(has(LogLevel::Debug, "retrying in"));
    // expires_in is 3600 and the JWT's exp its whole-second iat + 3600: the earlier end, counted
    // from the reply's arrival some way into that second, leaves 3599 s (3598 across a second).
    EXPECT_TRUE(has(LogLevel::Info, "fetched, valid for 359"));
    EXPECT_TRUE(has(LogLevel::Error, "HTTP 401"));
    for (const auto& [level, message] : lines) {
        EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
        EXPECT_EQ(message.find("wrong-secret-value"), std::string::npos) << message;
        EXPECT_EQ(message.find(token), std::string::npos) << message;
    }
}

}  // namespace
}  // namespace mca::test
