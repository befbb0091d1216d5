// HTTPS with certificates made at test time by the openssl command: a CA, and a server
// certificate for 127.0.0.1 and localhost that it signed, one for another name, an expired one.
// Verification is always on: there is no option to turn it off.

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace mca::test {
namespace {

namespace fs = std::filesystem;

class Tls : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        directory = fs::temp_directory_path() / ("mca-tls-" + std::to_string(::getpid()));
        fs::create_directories(directory);
        const std::string dir = directory.string();
        std::ofstream(directory / "server.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
        std::ofstream(directory / "other.ext") << "subjectAltName=DNS:auth.example.com\n";
        const std::string openssl = MCA_TEST_OPENSSL;
        const std::string commands[] = {
            openssl + " req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mca-test-ca -keyout " + dir +
                "/ca.key -out " + dir + "/ca.pem",
            openssl + " req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + dir + "/server.key -out " + dir +
                "/server.csr",
            openssl + " x509 -req -in " + dir + "/server.csr -CA " + dir + "/ca.pem -CAkey " + dir +
                "/ca.key -CAcreateserial -days 2 -extfile " + dir + "/server.ext -out " + dir + "/server.pem",
            // Same key, signed by the same CA, but for another host name.
            openssl + " x509 -req -in " + dir + "/server.csr -CA " + dir + "/ca.pem -CAkey " + dir +
                "/ca.key -CAcreateserial -days 2 -extfile " + dir + "/other.ext -out " + dir + "/other.pem",
            // Same key and names, but its validity ended yesterday.
            openssl + " x509 -req -in " + dir + "/server.csr -CA " + dir + "/ca.pem -CAkey " + dir +
                "/ca.key -CAcreateserial -days -1 -extfile " + dir + "/server.ext -out " + dir + "/expired.pem",
        };
        for (const auto& command : commands) {
            ASSERT_EQ(std::system((command + " >/dev/null 2>&1").c_str()), 0) << command;
        }
    }
    static void TearDownTestSuite() { fs::remove_all(directory); }

    static ServerOptions https(const char* certificate = "server.pem") {
        ServerOptions options;
        options.tlsCertFile = (directory / certificate).string();
        options.tlsKeyFile = (directory / "server.key").string();
        return options;
    }

    /// A server with `certificate`, trusted CA configured: the fetch fails before any request.
    static void expectRefused(const char* certificate, const char* reasonText) {
        ServerFixture fixture(https(certificate));
        Options options = optionsFor(fixture.credentials());
        options.caInfo = (directory / "ca.pem").string();
        options.timeout = std::chrono::seconds(3);
        AuthClient client(options);
        const Error error = errorOf(client.getAuthorizationHeader());
        EXPECT_EQ(error.code(), Errc::Network) << error.what();
        EXPECT_NE(std::string(error.what()).find(reasonText), std::string::npos) << error.what();
        EXPECT_EQ(fixture.server.tokenRequests(), 0u);  // the credentials never left the client
    }

    static inline fs::path directory;
};

TEST_F(Tls, FetchesOverHttpsWithTheConfiguredCa) {
    ServerFixture fixture(https());
    ASSERT_EQ(fixture.server.baseUrl().rfind("https://", 0), 0u);
    Options options = optionsFor(fixture.credentials());
    options.caInfo = (directory / "ca.pem").string();
    AuthClient client(options);
    EXPECT_TRUE(verifyRs256Jwt(accessTokenOf(client.getAuthorizationHeader().get()), fixture.server.publicKeyPem()));
    // localhost is in the certificate too.
    Credentials byName = fixture.credentials();
    byName.serverUrl = "https://localhost:" + std::to_string(fixture.server.port()) + "/imf-authserver";
    EXPECT_NO_THROW(client.getAuthorizationHeader(byName).get());
}

TEST_F(Tls, RefusesAServerItCannotVerify) {
    ServerFixture fixture(https());
    Options options = optionsFor(fixture.credentials());
    options.timeout = std::chrono::seconds(3);
    AuthClient client(options);  // system trust store: does not know the test CA
    const Error error = errorOf(client.getAuthorizationHeader());
    EXPECT_EQ(error.code(), Errc::Network) << error.what();
    EXPECT_NE(std::string(error.what()).find("certificate"), std::string::npos) << error.what();
    EXPECT_EQ(fixture.server.tokenRequests(), 0u);  // the credentials never left the client
}

TEST_F(Tls, RefusesACertificateForAnotherHost) { expectRefused("other.pem", "127.0.0.1"); }  // curl names the host

TEST_F(Tls, RefusesAnExpiredCertificate) { expectRefused("expired.pem", "expired"); }

TEST_F(Tls, RefusesAMissingCaFile) {
    ServerFixture fixture(https());
    Options options = optionsFor(fixture.credentials());
    options.caInfo = (directory / "no-such-ca.pem").string();
    options.timeout = std::chrono::seconds(3);
    AuthClient client(options);
    EXPECT_EQ(errorOf(client.getAuthorizationHeader()).code(), Errc::Network);
}

}  // namespace
}  // namespace mca::test
