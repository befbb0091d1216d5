// One instance of a fleet, for the fleet tests: a real separate process with its own AuthClient
// sharing tokens through Redis. It waits for a common start time, then asks for a header every
// `interval` until `duration` has passed, and prints one line: "headers N failures F".
//
// usage: mca-fleet-member <redis-url|none> <server-url> <app-id> <client-id> <start-epoch-ms>
//                         <duration-ms> <interval-ms> <timeout-ms>      (secret in MCA_SECRET)

#include <mca/redis_token_store.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    if (argc != 9 || std::getenv("MCA_SECRET") == nullptr) {
        std::cerr << "usage: mca-fleet-member <redis-url|none> <server-url> <app-id> <client-id> <start-epoch-ms> "
                     "<duration-ms> <interval-ms> <timeout-ms> (secret in MCA_SECRET)\n";
        return 2;
    }
    const std::string redisUrl = argv[1];
    mca::Options options;
    options.serverUrl = argv[2];
    options.appId = argv[3];
    options.clientId = argv[4];
    options.secret = std::getenv("MCA_SECRET");
    options.timeout = std::chrono::milliseconds(std::stoll(argv[8]));
    if (redisUrl != "none") options.sharedStore = mca::RedisTokenStore::connect(redisUrl);
    const auto start = std::chrono::system_clock::time_point(std::chrono::milliseconds(std::stoll(argv[5])));
    const auto duration = std::chrono::milliseconds(std::stoll(argv[6]));
    const auto interval = std::chrono::milliseconds(std::stoll(argv[7]));

    mca::AuthClient client(options);
    std::this_thread::sleep_until(start);
    const auto end = std::chrono::steady_clock::now() + duration;
    long headers = 0, failures = 0;
    do {
        try {
            if (client.getAuthorizationHeader().get().rfind("Bearer ", 0) == 0) ++headers;
        } catch (const mca::Error& error) {
            ++failures;
            std::cerr << error.what() << "\n";
        }
        std::this_thread::sleep_for(interval);
    } while (std::chrono::steady_clock::now() < end);
    std::cout << "headers " << headers << " failures " << failures << " storeHits " << client.stats().storeHits
              << std::endl;
    return failures == 0 ? 0 : 1;
}
