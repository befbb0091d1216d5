// One instance of a fleet: tokens are shared with the other instances through Redis, so the
// fleet makes one token request per tenant. Credentials from VCAP_SERVICES as usual.
//
//   REDIS_URL=redis://:password@redis.internal:6379/0 ./fleet

#include <mca/redis_token_store.hpp>  // link mca::oauth_redis (needs hiredis: libhiredis-dev)

#include <cstdlib>
#include <iostream>

int main() {
    const char* redisUrl = std::getenv("REDIS_URL");
    mca::Options options;
    options.sharedStore = mca::RedisTokenStore::connect(redisUrl ? redisUrl : "redis://127.0.0.1:6379");
    mca::AuthClient client(options);
    try {
        std::cout << "got a header of " << client.getAuthorizationHeader().get().size() << " bytes; "
                  << client.stats().storeHits << " came from the fleet's store\n";
        return 0;
    } catch (const mca::Error& error) {
        std::cerr << error.what() << "\n";
        return 1;
    }
}
