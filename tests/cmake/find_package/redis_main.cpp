// Links mca::oauth_redis from an installed package: a malformed URL is the one thing connect throws for.
#include <mca/redis_token_store.hpp>

#include <cstdio>
#include <stdexcept>

int main() {
    try {
        mca::RedisTokenStore::connect("not-a-redis-url");
    } catch (const std::invalid_argument&) {
        const auto store = mca::RedisTokenStore::connect("redis://127.0.0.1:1?timeout=5");  // unreachable: fine
        std::puts(store->get("nothing") ? "unexpected value" : "mca::oauth_redis links");
        return 0;
    }
    return 1;
}
