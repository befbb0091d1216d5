// HTTPS with certificates made at test time by the openssl command: a CA, and a server
// certificate for 127.0.0.1 and localhost that it signed, one for another name, an expired one.
// Verification is always on: there is no option to turn it off. caInfo is then the only trust
// store, and a fork()ed child leaves the parent's TLS connection alone.

#include "test_process.hpp"
#include "test_support.hpp"
#include "test_tls_files.hpp"

#include <sched.h>
#include <sys/mount.h>

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
        makeServerCertificates(directory, "mca-test-ca");
        const std::string dir = directory.string();
        std::ofstream(directory / "other.ext") << "subjectAltName=DNS:auth.example.com\n";
        const std::string openssl = MCA_TEST_OPENSSL;
        const std::string commands[] = {
            // Same key, signed by the same CA, but for another host name.
            openssl + " x509 -req -in " + dir + "/server.csr -CA " + dir + "/ca.pem -CAkey " + dir +
                "/ca.key -CAcreateserial -days 2 -extfile " + dir + "/other.ext -out " + dir + "/other.pem",
            // Same key and names, but its validity ended yesterday.
            openssl + " x509 -req -in " + dir + "/server.csr -CA " + dir + "/ca.pem -CAkey " + dir +
                "/ca.key -CAcreateserial -days -1 -extfile " + dir + "/server.ext -out " + dir + "/expired.pem",
            // A CA that signed nothing here.
            openssl + " req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mca-unrelated-ca -keyout " + dir +
                "/unrelated-ca.key -out " + dir + "/unrelated-ca.pem",
            openssl + " x509 -hash -noout -in " + dir + "/ca.pem -out " + dir + "/ca.hash",
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

/// In this process (a fork()ed child), `replacement` is seen at `target` and nothing else sees it:
/// a bind mount in a private mount namespace (as root, or in a new user namespace). Nothing on
/// the machine is written. False when the kernel or the container does not allow it.
bool mountPrivately(const std::string& replacement, const std::string& target) {
    if (::unshare(CLONE_NEWNS) != 0) {
        const std::string uid = std::to_string(::getuid()), gid = std::to_string(::getgid());
        if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
        std::ofstream("/proc/self/setgroups") << "deny";
        std::ofstream("/proc/self/uid_map") << "0 " << uid << " 1";
        std::ofstream("/proc/self/gid_map") << "0 " << gid << " 1";
    }
    return ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
           ::mount(replacement.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) == 0;
}

// libcurl also trusts a CA directory compiled into it (CURLOPT_CAPATH; /etc/ssl/certs on Debian).
// caInfo must replace the whole trust store, that directory included. The test CA is put, hashed,
// in a directory mounted over libcurl's CA path in a child's private mount namespace (nothing on
// the machine changes), with the unrelated CA as the default bundle: without caInfo the test CA is
// trusted through the directory, and with caInfo naming the unrelated CA it must not be.
TEST_F(Tls, CaInfoIsTheOnlyTrustStoreNotLibcurlsCaPathToo) {
    if (kThreadSanitizer) GTEST_SKIP() << "the child starts threads after fork(): ThreadSanitizer does not support it";
    const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
    if (curl->capath == nullptr) GTEST_SKIP() << "this libcurl has no compiled-in CA path";
    const fs::path caPath = directory / "capath";
    fs::create_directories(caPath);
    std::string hash;
    std::ifstream(directory / "ca.hash") >> hash;
    ASSERT_FALSE(hash.empty());
    fs::copy_file(directory / "ca.pem", caPath / (hash + ".0"), fs::copy_options::overwrite_existing);
    if (curl->cainfo != nullptr && fs::path(curl->cainfo).parent_path() == fs::path(curl->capath)) {
        fs::copy_file(directory / "unrelated-ca.pem", caPath / fs::path(curl->cainfo).filename(),
                      fs::copy_options::overwrite_existing);  // the default bundle is in that directory
    }
    // Everything runs in the child, the server included: forked while this process has no other
    // thread, the child cannot inherit a lock that a thread of the parent held (the allocator's,
    // under a sanitizer).
    const int status = runInChild(
        [&] {
            if (!mountPrivately(caPath.string(), curl->capath)) return 77;
            ServerFixture fixture(https());
            Options options = optionsFor(fixture.credentials());
            options.timeout = std::chrono::seconds(5);
            try {
                AuthClient client(options);
                client.getAuthorizationHeader().get();
            } catch (const std::exception&) {
                return 10;  // the directory is not consulted: the test would prove nothing
            }
            options.caInfo = (directory / "unrelated-ca.pem").string();
            try {
                AuthClient client(options);
                client.getAuthorizationHeader().get();
                return 11;  // trusted through the CA path although caInfo does not name its CA
            } catch (const Error& error) {
                if (error.code() != Errc::Network) return 12;
            }
            return fixture.server.tokenRequests() == 1u ? 0 : 13;  // only the fetch without caInfo was sent
        },
        std::chrono::seconds(30));
    if (status == 77) GTEST_SKIP() << "no private mount namespace here (unshare or mount refused)";
    EXPECT_EQ(status, 0) << "10: the CA path is not used at all; 11: caInfo did not replace the CA path; "
                            "12: another error; 13: the server saw the request made with caInfo; -1: the child hung";
}

// A child of fork() inherits the client's TLS connection; destroying the client there must not
// close it (a close_notify would end the parent's connection).
TEST_F(Tls, AForkedChildLeavesTheParentsTlsConnectionAlone) {
    ServerFixture fixture(https());
    Options options;
    options.caInfo = (directory / "ca.pem").string();
    auto client = std::make_unique<AuthClient>(options);
    ASSERT_NO_THROW(client->getAuthorizationHeader(fixture.tenant(0)).get());
    ASSERT_EQ(fixture.server.connectionsAccepted(), 1u);
    const Credentials second = fixture.tenant(1);
    const int status = runInChild(
        [&] {
            auto refused = client->getAuthorizationHeader(second);
            if (refused.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return 2;
            try {
                refused.get();
                return 3;
            } catch (const Error& error) {
                if (error.code() != Errc::Shutdown) return 4;
            }
            client.reset();
            return 0;
        },
        std::chrono::seconds(20));
    EXPECT_EQ(status, 0) << "2: the child's fetch hung; 3: it succeeded; 4: another error; -1: the child hung";
    EXPECT_NO_THROW(client->getAuthorizationHeader(second).get());
    EXPECT_EQ(fixture.server.connectionsAccepted(), 1u)
        << "the parent had to reconnect: the child closed its connection";
}

}  // namespace
}  // namespace mca::test
