// RedisTokenStore against a real redis-server: lease renewal, compare-and-delete, the fleet key,
// and AUTH for a URL that names a user with an empty password. The test reads Redis's state
// with its own hiredis connection.

#include <mca/redis_token_store.hpp>

#include "redis_process.hpp"

#include <gtest/gtest.h>

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <string>

namespace mca::test {
namespace {

using namespace std::chrono_literals;

/// A plain hiredis connection of the test's own, to look at what the store did.
class RedisProbe {
  public:
    explicit RedisProbe(std::uint16_t port) : context_(redisConnect("127.0.0.1", port)) {
        if (!context_ || context_->err != 0) throw std::runtime_error("cannot connect to redis-server");
    }
    ~RedisProbe() { redisFree(context_); }
    RedisProbe(const RedisProbe&) = delete;
    RedisProbe& operator=(const RedisProbe&) = delete;

    /// The reply as text: a string's bytes, an integer's digits, "(nil)", or "(error) ...".
    std::string run(const std::vector<std::string>& arguments) {
        std::vector<const char*> pointers;
        std::vector<std::size_t> sizes;
        for (const auto& argument : arguments) {
            pointers.push_back(argument.data());
            sizes.push_back(argument.size());
        }
        auto* reply = static_cast<redisReply*>(
            redisCommandArgv(context_, static_cast<int>(arguments.size()), pointers.data(), sizes.data()));
        if (reply == nullptr) throw std::runtime_error("redis connection failed");
        std::string text;
        switch (reply->type) {
            case REDIS_REPLY_STRING:
            case REDIS_REPLY_STATUS:
                text.assign(reply->str, reply->len);
                break;
            case REDIS_REPLY_INTEGER:
                text = std::to_string(reply->integer);
                break;
            case REDIS_REPLY_NIL:
                text = "(nil)";
                break;
            case REDIS_REPLY_ERROR:
                text = "(error) " + std::string(reply->str, reply->len);
                break;
            default:
                text = "(other)";
        }
        freeReplyObject(reply);
        return text;
    }
    long long pttl(const std::string& name) { return std::stoll(run({"PTTL", name})); }

  private:
    redisContext* context_;
};

struct StoreFixture {
    RedisProcess redis;
    RedisProbe probe{redis.port()};
    std::shared_ptr<RedisTokenStore> store = RedisTokenStore::connect(redis.url() + "?timeout=500");
};

TEST(RedisStore, TheHolderRenewsItsLease) {
    StoreFixture fixture;
    ASSERT_EQ(fixture.store->tryLease("lease:a", "holder-1", 2s), TokenStore::Lease::Acquired);
    ASSERT_LE(fixture.probe.pttl("lease:a"), 2000);
    EXPECT_TRUE(fixture.store->renewLease("lease:a", "holder-1", 60s));
    EXPECT_GT(fixture.probe.pttl("lease:a"), 2000);
    EXPECT_LE(fixture.probe.pttl("lease:a"), 60000);
    EXPECT_EQ(fixture.probe.run({"GET", "lease:a"}), "holder-1");
}

TEST(RedisStore, OnlyTheHolderRenewsAndNothingIsCreated) {
    StoreFixture fixture;
    ASSERT_EQ(fixture.store->tryLease("lease:b", "holder-1", 2s), TokenStore::Lease::Acquired);
    EXPECT_FALSE(fixture.store->renewLease("lease:b", "holder-2", 60s));
    EXPECT_LE(fixture.probe.pttl("lease:b"), 2000);
    EXPECT_EQ(fixture.probe.run({"GET", "lease:b"}), "holder-1");
    EXPECT_FALSE(fixture.store->renewLease("lease:none", "holder-1", 60s));  // lapsed or never taken
    EXPECT_EQ(fixture.probe.run({"EXISTS", "lease:none"}), "0");
}

TEST(RedisStore, RemoveIfEqualDeletesOnlyTheValueItWasGiven) {
    StoreFixture fixture;
    fixture.store->put("token:a", std::string("sealed\0one", 10), 60s);
    fixture.store->removeIfEqual("token:a", std::string("sealed\0two", 10));  // a newer value: kept
    EXPECT_EQ(fixture.store->get("token:a"), std::string("sealed\0one", 10));
    fixture.store->removeIfEqual("token:a", std::string("sealed\0one", 10));
    EXPECT_EQ(fixture.store->get("token:a"), std::nullopt);
    EXPECT_EQ(fixture.probe.run({"EXISTS", "token:a"}), "0");
    fixture.store->removeIfEqual("token:missing", "x");  // nothing there: nothing happens
}

TEST(RedisStore, AnUnreachableStoreRenewsAndRemovesNothingAndNeverThrows) {
    const auto store = RedisTokenStore::connect("redis://127.0.0.1:" + std::to_string(freeLoopbackPort()));
    EXPECT_FALSE(store->renewLease("lease:a", "holder-1", 1s));
    EXPECT_NO_THROW(store->removeIfEqual("token:a", "x"));
}

TEST(RedisStore, CarriesTheFleetKeyItWasGiven) {
    EXPECT_EQ(RedisTokenStore::connect("redis://127.0.0.1:1")->fleetKey(), "");
    EXPECT_EQ(RedisTokenStore::connect("redis://127.0.0.1:1", "fleet-key-0b3c")->fleetKey(), "fleet-key-0b3c");
}

// redis://user:@host names an ACL user whose password is empty (a `nopass` user): the store
// must authenticate as that user, not stay the default user.
TEST(RedisStore, AUserWithAnEmptyPasswordIsAuthenticated) {
    RedisProcess redis("default-pass-77", {"--user", "fleet", "on", "nopass", "~*", "+@all"});
    const auto store = RedisTokenStore::connect("redis://fleet:@127.0.0.1:" + std::to_string(redis.port()));
    EXPECT_EQ(store->tryLease("lease:acl", "holder-1", 5s), TokenStore::Lease::Acquired);
    const auto anonymous = RedisTokenStore::connect("redis://127.0.0.1:" + std::to_string(redis.port()));
    EXPECT_EQ(anonymous->tryLease("lease:acl2", "holder-1", 5s), TokenStore::Lease::Unavailable);
}

}  // namespace
}  // namespace mca::test
