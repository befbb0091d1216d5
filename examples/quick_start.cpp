// Fetches an Authorization header for the credentials bound to this app (VCAP_SERVICES, or the
// MCA_* variables below), then asks again to show a cache hit.
//
//   MCA_APP_ID, MCA_CLIENT_ID, MCA_SECRET, MCA_SERVER_URL   credentials when not on Cloud Foundry

#include <mca/auth_client.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>

namespace {
std::string fromEnvironment(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr ? value : "";
}
}  // namespace

int main() {
    mca::Options options;  // empty credentials are read from VCAP_SERVICES / VCAP_APPLICATION
    options.appId = fromEnvironment("MCA_APP_ID");
    options.clientId = fromEnvironment("MCA_CLIENT_ID");
    options.secret = fromEnvironment("MCA_SECRET");
    options.serverUrl = fromEnvironment("MCA_SERVER_URL");
    mca::AuthClient client(options);

    try {
        auto started = std::chrono::steady_clock::now();
        const std::string header = client.getAuthorizationHeader().get();
        const auto fetched = std::chrono::steady_clock::now() - started;

        started = std::chrono::steady_clock::now();
        const std::string again = client.getAuthorizationHeader().get();
        const auto hit = std::chrono::steady_clock::now() - started;

        using std::chrono::microseconds;
        // A header is a credential: show its start, not all of it.
        std::cout << "Authorization: " << header.substr(0, 40) << "... (" << header.size() << " bytes)\n"
                  << "first call (token request): " << std::chrono::duration_cast<microseconds>(fetched).count()
                  << " us\n"
                  << "second call (cache hit):    " << std::chrono::duration_cast<microseconds>(hit).count()
                  << " us, same header: " << (again == header ? "yes" : "no") << "\n";
        return 0;
    } catch (const mca::Error& error) {
        std::cerr << error.what() << " (HTTP status " << error.httpStatus() << ")\n";
        return 1;
    }
}
