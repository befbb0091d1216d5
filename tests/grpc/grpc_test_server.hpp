#pragma once

// A gRPC server on 127.0.0.1 for the gRPC adapter's tests: one generic (any method) service that
// echoes the request when the call's `authorization` metadata is one `Bearer <JWT>` whose RS256
// signature verifies against the token server's key, and answers UNAUTHENTICATED otherwise. It
// listens with TLS (the certificate and key files given), in plain text on a second port, and on
// a Unix socket with gRPC's local credentials.
// Certificates are made at test time with the openssl command (GrpcCertificates).

#include "mca_test_server.hpp"
#include "test_tls_files.hpp"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mca::test {

inline std::string readTextFile(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// A CA and a server certificate for 127.0.0.1 it signed, in a temporary directory removed at
/// destruction.
struct GrpcCertificates {
    GrpcCertificates() {
        directory = std::filesystem::temp_directory_path() / ("mca-grpc-" + std::to_string(::getpid()));
        makeServerCertificates(directory, "mca-grpc-test-ca");
    }
    ~GrpcCertificates() {
        std::error_code ignored;
        std::filesystem::remove_all(directory, ignored);
    }
    GrpcCertificates(const GrpcCertificates&) = delete;
    GrpcCertificates& operator=(const GrpcCertificates&) = delete;

    std::filesystem::path caFile() const { return directory / "ca.pem"; }
    std::string caPem() const { return readTextFile(caFile()); }

    std::filesystem::path directory;
};

class GrpcTestServer {
  public:
    GrpcTestServer(const GrpcCertificates& certificates, std::string tokenPublicKeyPem)
        : publicKeyPem_(std::move(tokenPublicKeyPem)),
          socket_((certificates.directory / ("grpc-" + std::to_string(++instances()) + ".sock")).string()),
          service_(*this) {
        grpc::SslServerCredentialsOptions tls;
        tls.pem_key_cert_pairs.push_back(
            {readTextFile(certificates.directory / "server.key"), readTextFile(certificates.directory / "server.pem")});
        grpc::ServerBuilder builder;
        builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(tls), &tlsPort_);
        builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &plainPort_);
        builder.AddListeningPort(localTarget(), grpc::experimental::LocalServerCredentials(UDS));
        builder.RegisterCallbackGenericService(&service_);
        server_ = builder.BuildAndStart();
        if (!server_ || tlsPort_ == 0 || plainPort_ == 0)
            throw std::runtime_error("the gRPC test server did not start");
    }
    ~GrpcTestServer() { server_->Shutdown(); }
    GrpcTestServer(const GrpcTestServer&) = delete;
    GrpcTestServer& operator=(const GrpcTestServer&) = delete;

    std::string target() const { return "127.0.0.1:" + std::to_string(tlsPort_); }
    std::string plainTarget() const { return "127.0.0.1:" + std::to_string(plainPort_); }
    std::string localTarget() const { return "unix:" + socket_; }

    /// From now on, the first access token a call presents is refused, in that call and after.
    void refuseFirstToken() {
        std::lock_guard lock(mutex_);
        refuseFirst_ = true;
    }

    std::size_t calls() const {
        std::lock_guard lock(mutex_);
        return calls_;
    }
    std::size_t accepted() const {
        std::lock_guard lock(mutex_);
        return accepted_;
    }
    std::size_t refused() const {
        std::lock_guard lock(mutex_);
        return calls_ - accepted_;
    }
    /// The distinct access tokens accepted so far.
    std::set<std::string> acceptedTokens() const {
        std::lock_guard lock(mutex_);
        return acceptedTokens_;
    }

  private:
    static int& instances() {
        static int count = 0;
        return count;
    }

    grpc::Status check(const grpc::GenericCallbackServerContext& context) {
        std::vector<std::string> values;
        const auto range = context.client_metadata().equal_range("authorization");
        for (auto it = range.first; it != range.second; ++it) values.emplace_back(it->second.data(), it->second.size());
        std::lock_guard lock(mutex_);
        ++calls_;
        if (values.size() != 1) {
            return {grpc::StatusCode::UNAUTHENTICATED, std::to_string(values.size()) + " authorization entries"};
        }
        if (values[0].rfind("Bearer ", 0) != 0) return {grpc::StatusCode::UNAUTHENTICATED, "not a Bearer header"};
        const std::string token = values[0].substr(7);
        if (!verifyRs256Jwt(token, publicKeyPem_)) {
            return {grpc::StatusCode::UNAUTHENTICATED, "the token does not verify"};
        }
        if (refuseFirst_ && refusedToken_.empty()) refusedToken_ = token;
        if (token == refusedToken_) return {grpc::StatusCode::UNAUTHENTICATED, "the token was revoked"};
        ++accepted_;
        acceptedTokens_.insert(token);
        return grpc::Status::OK;
    }

    // Echoes one request message, or finishes at once with the refusal.
    class Reactor final : public grpc::ServerGenericBidiReactor {
      public:
        explicit Reactor(const grpc::Status& verdict) {
            if (verdict.ok()) {
                StartRead(&message_);
            } else {
                Finish(verdict);
            }
        }
        void OnReadDone(bool ok) override {
            if (!ok) {
                Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
                return;
            }
            StartWriteAndFinish(&message_, grpc::WriteOptions(), grpc::Status::OK);
        }
        void OnDone() override { delete this; }

      private:
        grpc::ByteBuffer message_;
    };

    class Service final : public grpc::CallbackGenericService {
      public:
        explicit Service(GrpcTestServer& server) : server_(server) {}
        grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override {
            return new Reactor(server_.check(*context));
        }

      private:
        GrpcTestServer& server_;
    };

    const std::string publicKeyPem_;
    const std::string socket_;
    mutable std::mutex mutex_;
    bool refuseFirst_ = false;
    std::string refusedToken_;
    std::size_t calls_ = 0, accepted_ = 0;
    std::set<std::string> acceptedTokens_;
    Service service_;
    int tlsPort_ = 0, plainPort_ = 0;
    std::unique_ptr<grpc::Server> server_;
};

}  // namespace mca::test
