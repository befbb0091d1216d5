// A fleet sharing tokens through a real Redis: separate processes (mca-fleet-member), a real
// redis-server started by the test on a loopback port, and the loopback MCA server counting the
// token requests it gets.

#include <mca/redis_token_store.hpp>
// Linked against mca::oauth_compiled: the store names and seals come from the detail headers.
#include <mca/detail/fleet.hpp>
#include <mca/detail/flows.hpp>

#include "mca_test_server.hpp"
#include "redis_process.hpp"
#include "test_certificates.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace mca::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kApp = "fleet-app";
constexpr const char* kClient = "fleet-client";
constexpr const char* kSecret = "fleet-secret-5b9e";

struct MemberResult {
    int exitCode = 0;
    long headers = 0, failures = 0, storeHits = 0;
};

/// Starts `count` fleet members that begin together at `startIn` from now.
class Fleet {
  public:
    Fleet(const std::string& redisUrl, const std::string& serverUrl) : redisUrl_(redisUrl), serverUrl_(serverUrl) {
        directory_ =
            fs::temp_directory_path() / ("mca-fleet-" + std::to_string(::getpid()) + "-" + std::to_string(++runs_));
        fs::create_directories(directory_);
    }
    ~Fleet() { fs::remove_all(directory_); }

    void start(int count, std::chrono::milliseconds duration, std::chrono::milliseconds interval,
               std::chrono::milliseconds timeout = 5s, std::string secret = kSecret,
               std::chrono::milliseconds startIn = 1500ms) {
        const auto startAt = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 (std::chrono::system_clock::now() + startIn).time_since_epoch())
                                 .count();
        for (int i = 0; i < count; ++i) {
            const std::string output = (directory_ / ("member-" + std::to_string(pids_.size()))).string();
            outputs_.push_back(output);
            pids_.push_back(spawn(
                {MCA_TEST_FLEET_MEMBER, redisUrl_, serverUrl_, kApp, kClient, std::to_string(startAt),
                 std::to_string(duration.count()), std::to_string(interval.count()), std::to_string(timeout.count())},
                output, {"MCA_SECRET=" + secret}));
        }
    }
    pid_t pid(std::size_t index) const { return pids_.at(index); }

    std::vector<MemberResult> wait() {
        std::vector<MemberResult> results;
        for (std::size_t i = 0; i < pids_.size(); ++i) {
            MemberResult result;
            result.exitCode = waitFor(pids_[i]);
            std::ifstream output(outputs_[i]);
            std::string word;
            output >> word >> result.headers >> word >> result.failures >> word >> result.storeHits;
            if (result.exitCode != 0 && result.exitCode < 128) {
                std::ifstream errors(outputs_[i] + ".err");
                std::stringstream text;
                text << errors.rdbuf();
                ADD_FAILURE() << "member " << i << " exited " << result.exitCode << ": " << text.str().substr(0, 500);
            }
            results.push_back(result);
        }
        pids_.clear();
        outputs_.clear();
        return results;
    }

  private:
    static inline int runs_ = 0;
    std::string redisUrl_, serverUrl_;
    fs::path directory_;
    std::vector<pid_t> pids_;
    std::vector<std::string> outputs_;
};

struct FleetFixture {
    FleetFixture() { server.addClient(kApp, kClient, kSecret); }
    McaTestServer server;
    RedisProcess redis;
};

TEST(Fleet, AColdFleetMakesOneTokenRequest) {
    FleetFixture fixture;
    Fleet fleet(fixture.redis.url(), fixture.server.baseUrl());
    fleet.start(8, 500ms, 20ms);
    long storeHits = 0;
    for (const auto& member : fleet.wait()) {
        EXPECT_EQ(member.failures, 0);
        EXPECT_GT(member.headers, 0);
        storeHits += member.storeHits;
    }
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
    EXPECT_EQ(storeHits, 7);
    std::printf("cold fleet of 8 processes: %zu token request(s)\n", fixture.server.tokenRequests());
}

TEST(Fleet, RefreshesOncePerLifetimeForTheWholeFleet) {
    constexpr int kMembers = 4;
    constexpr auto kDuration = 15s;
    FleetFixture fixture;
    fixture.server.setExpiresIn(4);  // refreshed about every 3 s
    McaTestServer alone;             // the same load without the store, for the figure, at the same time
    alone.addClient(kApp, kClient, kSecret);
    alone.setExpiresIn(4);
    Fleet shared(fixture.redis.url(), fixture.server.baseUrl());
    Fleet unshared("none", alone.baseUrl());
    shared.start(kMembers, kDuration, 20ms);
    unshared.start(kMembers, kDuration, 20ms);
    for (const auto& member : shared.wait()) EXPECT_EQ(member.failures, 0);
    for (const auto& member : unshared.wait()) EXPECT_EQ(member.failures, 0);
    const std::size_t withStore = fixture.server.tokenRequests();
    const std::size_t withoutStore = alone.tokenRequests();

    std::printf("%d processes, 15 s, 4 s tokens: %zu token requests with the store, %zu without\n", kMembers, withStore,
                withoutStore);
    RecordProperty("requests_with_store", static_cast<int>(withStore));
    RecordProperty("requests_without_store", static_cast<int>(withoutStore));
    // A 4 s token whose JWT exp is in whole seconds lives 3-4 s from its reply; less the 1 s safety
    // skew and its refresh window, it is refreshed every 1.5-2.6 s: at most about 11 fetches in 15 s
    // for the whole fleet, against about four times as many for processes on their own.
    EXPECT_LE(withStore, 11u);
    EXPECT_GE(withoutStore * 2, 5 * withStore);
}

TEST(Fleet, KeepsServingWhileRedisIsDownAndUsesItAgainAfter) {
    FleetFixture fixture;
    fixture.server.setExpiresIn(3);
    Fleet fleet(fixture.redis.url() + "?timeout=50", fixture.server.baseUrl());
    fleet.start(3, 12s, 20ms, 5s, kSecret, 500ms);
    std::this_thread::sleep_for(4s);
    fixture.redis.stop();
    std::this_thread::sleep_for(4s);
    fixture.redis.start();
    const std::size_t requestsBeforeReturn = fixture.server.tokenRequests();
    // After Redis returned (empty: it keeps nothing on disk), tokens are published to it again.
    // Looked for while the fleet still runs: a 3 s token's entry expires soon after the last
    // member stops, which on a busy machine can come before a look afterwards.
    const auto store = RedisTokenStore::connect(fixture.redis.url() + "?timeout=200");
    const Credentials tenant{kApp, kClient, kSecret, fixture.server.baseUrl()};
    const std::string name =
        std::string(detail::kTokenPrefix) + detail::storeDigestOf("", detail::identityCopy(tenant));
    bool republished = false;
    for (const auto until = std::chrono::steady_clock::now() + 6s;
         !republished && std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(50ms)) {
        republished = store->get(name).has_value();
    }
    for (const auto& member : fleet.wait()) EXPECT_EQ(member.failures, 0);  // every call succeeded
    EXPECT_TRUE(republished);
    EXPECT_GT(fixture.server.tokenRequests(), requestsBeforeReturn);
}

TEST(Fleet, GarbageAndForeignValuesInRedisAreIgnored) {
    FleetFixture fixture;
    const auto store = RedisTokenStore::connect(fixture.redis.url() + "?timeout=200");
    const Credentials tenant{kApp, kClient, kSecret, fixture.server.baseUrl()};
    const std::string name =
        std::string(detail::kTokenPrefix) + detail::storeDigestOf("", detail::identityCopy(tenant));
    const detail::TokenSeal foreignSeal("another-tenants-secret", name);
    const std::string foreign = foreignSeal.seal({"Bearer stolen.token.value", std::chrono::system_clock::now() + 1h});
    const detail::TokenSeal rightSeal(kSecret, name);
    const std::string valid = rightSeal.seal({"Bearer planted.token.value", std::chrono::system_clock::now() + 1h});
    for (const std::string& value :
         {std::string("garbage"), foreign, valid.substr(0, valid.size() - 3), std::string()}) {
        store->put(name, value, 60s);
        Options options;
        options.sharedStore = RedisTokenStore::connect(fixture.redis.url() + "?timeout=200");
        AuthClient client(options);
        const std::string header = client.getAuthorizationHeader(tenant).get();
        EXPECT_NE(header, "Bearer stolen.token.value");
        EXPECT_EQ(header.rfind("Bearer ey", 0), 0u);  // fetched from the server instead
    }
    EXPECT_EQ(fixture.server.tokenRequests(), 4u);
}

TEST(Fleet, AWrongSecretGetsTheServersRefusalNotTheFleetsToken) {
    FleetFixture fixture;
    Options options;
    options.sharedStore = RedisTokenStore::connect(fixture.redis.url());
    AuthClient right(options), wrong(options);
    EXPECT_NO_THROW(right.getAuthorizationHeader(Credentials{kApp, kClient, kSecret, fixture.server.baseUrl()}).get());
    try {
        wrong.getAuthorizationHeader(Credentials{kApp, kClient, "not-the-secret", fixture.server.baseUrl()}).get();
        ADD_FAILURE() << "a wrong secret got a token";
    } catch (const Error& error) {
        EXPECT_EQ(error.httpStatus(), 401);
    }
}

TEST(Fleet, OAuthClientsShareTokensThroughRedisSealedByTheirSecretOrKey) {
    FleetFixture fixture;
    const auto key = makeKey("EC"), otherKey = makeKey("EC");
    fixture.server.addOAuth2Client("fleet",
                                   {"jwt-client", ClientAuth::PrivateKeyJwt, "", certificatePem(key.get(), "jwt"), ""});
    fixture.server.addOAuth2Client("fleet", {"post-client", ClientAuth::SecretPost, kSecret, "", ""});
    OAuthCredentials jwt;
    jwt.clientId = "jwt-client";
    jwt.issuer = fixture.server.issuer("fleet");
    jwt.authMethod = ClientAuthMethod::PrivateKeyJwt;
    jwt.privateKeyPem = privateKeyPem(key.get());
    OAuthCredentials post;
    post.clientId = "post-client";
    post.tokenUrl = fixture.server.tokenEndpoint("fleet");
    post.authMethod = ClientAuthMethod::SecretPost;
    post.secret = kSecret;
    Options options;
    options.sharedStore = RedisTokenStore::connect(fixture.redis.url());
    AuthClient first(options), second(options);
    for (const auto* credentials : {&jwt, &post}) {
        const std::string header = first.getAuthorizationHeader(*credentials).get();
        EXPECT_EQ(second.getAuthorizationHeader(*credentials).get(), header) << credentials->clientId;
    }
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
    EXPECT_EQ(second.stats().storeHits, 2u);

    // The same client id with another key is not handed the fleet's token: the server refuses it.
    OAuthCredentials impostor = jwt;
    impostor.privateKeyPem = privateKeyPem(otherKey.get());
    try {
        second.getAuthorizationHeader(impostor).get();
        ADD_FAILURE() << "a key the server does not know got a token";
    } catch (const Error& error) {
        EXPECT_EQ(error.httpStatus(), 401) << error.what();
    }
}

TEST(Fleet, ALeaseHolderKilledMidFetchIsTakenOverWithinAboutALeaseLength) {
    FleetFixture fixture;
    Reply slow;
    slow.delay = 20s;  // the first fetch hangs: its process is killed while it holds the lease
    fixture.server.pushReply(slow);
    constexpr auto kTimeout = 10s;  // every instance has the same, default budget
    Fleet holder(fixture.redis.url(), fixture.server.baseUrl());
    holder.start(1, 100ms, 10ms, kTimeout, kSecret, 0ms);
    for (int i = 0; i < 200 && fixture.server.tokenRequests() < 1; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(fixture.server.tokenRequests(), 1u);
    Fleet others(fixture.redis.url(), fixture.server.baseUrl());
    others.start(3, 100ms, 10ms, kTimeout, kSecret, 0ms);
    std::this_thread::sleep_for(1500ms);  // longer than a lease: the holder's renewals keep it
    EXPECT_EQ(fixture.server.tokenRequests(), 1u) << "a live holder's lease was taken over";
    ::kill(holder.pid(0), SIGKILL);
    const auto killedAt = std::chrono::steady_clock::now();
    for (const auto& member : others.wait()) EXPECT_EQ(member.failures, 0);
    holder.wait();
    const auto tookOver = std::chrono::steady_clock::now() - killedAt;
    const auto tookOverMs = std::chrono::duration_cast<std::chrono::milliseconds>(tookOver).count();
    std::printf("took over %lld ms after the lease holder was killed (lease 1 s, budget 10 s)\n",
                static_cast<long long>(tookOverMs));
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);  // the dead holder's, and one taken-over fetch
    // Detected within about a lease length, well inside the callers' own 10 s budget (the whole
    // lease wait may take half of it).
    EXPECT_LT(tookOver, kTimeout / 2);
}

TEST(Fleet, InvalidateRetiresARefusedTokenFleetWide) {
    FleetFixture fixture;
    const Credentials tenant{kApp, kClient, kSecret, fixture.server.baseUrl()};
    Options options;
    options.sharedStore = RedisTokenStore::connect(fixture.redis.url() + "?timeout=200");
    AuthClient first(options), second(options);
    const std::string refused = first.getAuthorizationHeader(tenant).get();
    EXPECT_EQ(second.getAuthorizationHeader(tenant).get(), refused);  // from the store
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);

    first.invalidate(tenant, refused);
    const std::string replacement = first.getAuthorizationHeader(tenant).get();
    EXPECT_NE(replacement, refused);
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);
    second.invalidate(tenant, refused);  // the second instance was refused the same token
    EXPECT_EQ(second.getAuthorizationHeader(tenant).get(), replacement);

    // A new instance of the fleet, in a process of its own, takes the replacement from the store.
    Fleet newcomer(fixture.redis.url(), fixture.server.baseUrl());
    newcomer.start(1, 100ms, 10ms, 5s, kSecret, 0ms);
    const auto results = newcomer.wait();
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].storeHits, 1);
    EXPECT_EQ(fixture.server.tokenRequests(), 2u);  // one request for the fleet after the refusal
}

/// A healthy but slow store: the real Redis store, with a fixed cost added to every call.
class SlowStore final : public TokenStore {
  public:
    SlowStore(std::shared_ptr<TokenStore> inner, std::chrono::milliseconds cost)
        : inner_(std::move(inner)), cost_(cost) {}
    std::optional<std::string> get(const std::string& name) override {
        pause();
        return inner_->get(name);
    }
    void put(const std::string& name, const std::string& value, std::chrono::milliseconds ttl) override {
        pause();
        inner_->put(name, value, ttl);
    }
    Lease tryLease(const std::string& name, const std::string& holder, std::chrono::milliseconds ttl) override {
        pause();
        return inner_->tryLease(name, holder, ttl);
    }
    void releaseLease(const std::string& name, const std::string& holder) override {
        pause();
        inner_->releaseLease(name, holder);
    }
    bool renewLease(const std::string& name, const std::string& holder, std::chrono::milliseconds ttl) override {
        pause();
        return inner_->renewLease(name, holder, ttl);
    }
    void removeIfEqual(const std::string& name, const std::string& value) override {
        pause();
        inner_->removeIfEqual(name, value);
    }

  private:
    void pause() const { std::this_thread::sleep_for(cost_); }
    std::shared_ptr<TokenStore> inner_;
    std::chrono::milliseconds cost_;
};

TEST(Fleet, ASlowRedisNeverCostsACallerItsDeadline) {
    McaTestServer server;
    RedisProcess redis;
    Options options;
    options.sharedStore = std::make_shared<SlowStore>(RedisTokenStore::connect(redis.url() + "?timeout=200"), 15ms);
    options.timeout = 1s;
    AuthClient client(options);
    std::vector<std::future<std::string>> futures;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 100; ++i) {
        const std::string appId = "slow-redis-" + std::to_string(i);
        server.addClient(appId, kClient, kSecret);
        futures.push_back(client.getAuthorizationHeader(Credentials{appId, kClient, kSecret, server.baseUrl()}));
    }
    int inTime = 0;
    for (auto& future : futures) {
        if (future.wait_until(start + 1500ms) == std::future_status::ready && future.get().rfind("Bearer ", 0) == 0) {
            ++inTime;
        }
    }
    std::printf("100 cold tenants, Redis at 15 ms a call, 1 s budget: %d in time\n", inTime);
    EXPECT_EQ(inTime, 100);
}

TEST(Fleet, ALeaseNeverReleasedCostsOnlyItsShareOfTheBudget) {
    FleetFixture fixture;
    fixture.server.setDelay(150ms);
    const Credentials tenant{kApp, kClient, kSecret, fixture.server.baseUrl()};
    // Someone took the tenant's lease and never gives it back.
    const auto writer = RedisTokenStore::connect(fixture.redis.url() + "?timeout=200");
    const std::string lease =
        std::string(detail::kLeasePrefix) + detail::storeDigestOf("", detail::identityCopy(tenant));
    ASSERT_EQ(writer->tryLease(lease, "a-stuck-holder", 1h), TokenStore::Lease::Acquired);
    Options options;
    options.sharedStore = RedisTokenStore::connect(fixture.redis.url() + "?timeout=200");
    options.timeout = 1s;
    AuthClient client(options);
    EXPECT_EQ(client.getAuthorizationHeader(tenant).get().rfind("Bearer ", 0), 0u);
    EXPECT_EQ(fixture.server.tokenRequests(), 1u);
}

TEST(Fleet, RedisAuthFromTheUrl) {
    McaTestServer server;
    server.addClient(kApp, kClient, kSecret);
    RedisProcess redis("redis-pass-41");
    Options options;
    options.sharedStore = RedisTokenStore::connect(redis.url());
    AuthClient client(options);
    EXPECT_NO_THROW(client.getAuthorizationHeader(Credentials{kApp, kClient, kSecret, server.baseUrl()}).get());
    const auto store = RedisTokenStore::connect(redis.url());
    EXPECT_NE(store->tryLease("probe", "x", 1s), TokenStore::Lease::Unavailable);  // authenticated
    const auto anonymous =
        RedisTokenStore::connect("redis://127.0.0.1:" + redis.url().substr(redis.url().rfind(':') + 1));
    EXPECT_EQ(anonymous->tryLease("probe-2", "x", 1s), TokenStore::Lease::Unavailable);
}

}  // namespace
}  // namespace mca::test
