#pragma once

// TLS files made at test time with the openssl command (MCA_TEST_OPENSSL): a CA, and a server
// certificate it signed for 127.0.0.1 and localhost, in a directory of the caller's.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace mca::test {

/// Writes <directory>/ca.pem, ca.key, server.pem, server.key and server.csr (kept, for more
/// certificates of the same key). Throws std::runtime_error naming the command that failed.
inline void makeServerCertificates(const std::filesystem::path& directory, const std::string& caName) {
    std::filesystem::create_directories(directory);
    const std::string dir = directory.string();
    std::ofstream(directory / "server.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    const std::string openssl = MCA_TEST_OPENSSL;
    const std::string commands[] = {
        openssl + " req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + caName + " -keyout " + dir +
            "/ca.key -out " + dir + "/ca.pem",
        openssl + " req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + dir + "/server.key -out " + dir +
            "/server.csr",
        openssl + " x509 -req -in " + dir + "/server.csr -CA " + dir + "/ca.pem -CAkey " + dir +
            "/ca.key -CAcreateserial -days 2 -extfile " + dir + "/server.ext -out " + dir + "/server.pem",
    };
    for (const auto& command : commands) {
        if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) throw std::runtime_error("failed: " + command);
    }
}

}  // namespace mca::test
