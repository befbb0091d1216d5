// Packaging smoke test shared by the find_package and add_subdirectory consumers: the public
// header compiles and links through mca::oauth, and a client with default Options reports a
// missing appId without touching the network.
#include <mca/auth_client.hpp>

#include <stdlib.h>  // unsetenv (POSIX)
#include <cstdio>
#include <cstring>
#include <exception>

int main() {
    // Default credentials fall back to Cloud Foundry's environment: make sure there is none.
    unsetenv("VCAP_SERVICES");
    unsetenv("VCAP_APPLICATION");

    std::printf("mca-oauth %s\n", MCA_OAUTH_VERSION_STRING);
#ifdef MCA_EXPECTED_VERSION
    // The installed package version file must agree with the installed header.
    if (std::strcmp(MCA_EXPECTED_VERSION, MCA_OAUTH_VERSION_STRING) != 0) {
        std::fprintf(stderr, "FAIL: package version %s != header version %s\n", MCA_EXPECTED_VERSION,
                     MCA_OAUTH_VERSION_STRING);
        return 1;
    }
#endif

    try {
        mca::AuthClient client;
        auto header = client.getAuthorizationHeader();
        try {
            std::fprintf(stderr, "FAIL: expected MissingAppId, got a header: %s\n", header.get().c_str());
        } catch (const mca::Error& e) {
            if (e.code() == mca::Errc::MissingAppId) {
                std::printf("OK: %s\n", e.what());
                return 0;
            }
            std::fprintf(stderr, "FAIL: expected MissingAppId, got: %s\n", e.what());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "FAIL: unexpected exception: %s\n", e.what());
    }
    return 1;
}
