// Consumer of the extracted Debian package, built with pkg-config only: small, so that the
// package test takes seconds (the pkg-config consumer of an install builds the full main.cpp).
// Links with every flag `pkg-config --libs mca-oauth` gives, and checks the header's version
// against the package's.
#include <mca/error.hpp>
#include <mca/version.hpp>

#include <cstdio>
#include <cstring>

int main() {
    const mca::Error error(mca::Errc::Timeout, "from the Debian package's headers");
    std::printf("mca-oauth %s: %s\n", MCA_OAUTH_VERSION_STRING, error.what());
    if (std::strcmp(MCA_EXPECTED_VERSION, MCA_OAUTH_VERSION_STRING) != 0) {
        std::fprintf(stderr, "FAIL: package version %s != header version %s\n", MCA_EXPECTED_VERSION,
                     MCA_OAUTH_VERSION_STRING);
        return 1;
    }
    return error.code() == mca::Errc::Timeout ? 0 : 1;
}
