// Calls a gRPC method protected by MCA, App ID or any OAuth 2.0 server: a TLS channel, and call
// credentials from mca::grpcCallCredentials that add `authorization: Bearer <token>`. When the
// server refuses the token (UNAUTHENTICATED: it was revoked early, say), the example retires
// exactly the header that call carried and retries once with a new token.
//
//   GRPC_TARGET       host:port of the gRPC server
//   GRPC_ROOT_CERTS   PEM file of the CAs that signed its certificate (unset: the system's CAs)
//   GRPC_METHOD       the full method name (default /mca.example.Greeter/Hello)
//   MCA_APP_ID, MCA_CLIENT_ID, MCA_SECRET, MCA_SERVER_URL   the credentials
//
// The call is a generic one with raw bytes, so that the example needs no .proto; a generated
// stub takes the same ClientContext.

#include <mca/grpc.hpp>  // link mca::oauth_grpc (needs gRPC C++: libgrpc++-dev)

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>

namespace {
std::string fromEnvironment(const char* name, const char* fallback = "") {
    const char* value = std::getenv(name);
    return value != nullptr ? value : fallback;
}

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// One unary call with raw bytes, waited for.
grpc::Status unaryCall(const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context,
                       const std::string& method, const std::string& request, std::string& reply) {
    grpc::GenericStub stub(channel);
    grpc::Slice requestSlice(request);
    const grpc::ByteBuffer requestBuffer(&requestSlice, 1);
    grpc::ByteBuffer replyBuffer;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &requestBuffer, &replyBuffer,
                   [&done](grpc::Status status) { done.set_value(std::move(status)); });
    grpc::Status status = done.get_future().get();
    std::vector<grpc::Slice> slices;
    if (status.ok() && replyBuffer.Dump(&slices).ok()) {
        for (const auto& slice : slices) reply.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    return status;
}
}  // namespace

int main() {
    auto client = std::make_shared<mca::AuthClient>();
    const mca::Tenant tenant =
        client->tenant(mca::Credentials{fromEnvironment("MCA_APP_ID"), fromEnvironment("MCA_CLIENT_ID"),
                                        fromEnvironment("MCA_SECRET"), fromEnvironment("MCA_SERVER_URL")});

    grpc::SslCredentialsOptions tls;  // call credentials need a secure channel
    if (const std::string roots = fromEnvironment("GRPC_ROOT_CERTS"); !roots.empty()) {
        tls.pem_root_certs = readFile(roots);
    }
    const auto channel = grpc::CreateChannel(fromEnvironment("GRPC_TARGET"), grpc::SslCredentials(tls));
    const std::string method = fromEnvironment("GRPC_METHOD", "/mca.example.Greeter/Hello");

    for (int attempt = 1;; ++attempt) {
        // The header this call carries: set just before the call is sent, read after it ended.
        std::string sentHeader;
        grpc::ClientContext context;
        context.set_credentials(mca::grpcCallCredentials(
            client, tenant, [&sentHeader](const std::string& header) { sentHeader = header; }));

        std::string reply;
        const grpc::Status status = unaryCall(channel, context, method, "hello", reply);
        if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED && attempt == 1 && !sentHeader.empty()) {
            std::cerr << "refused (" << status.error_message() << "): retiring that token and retrying\n";
            client->invalidate(tenant, sentHeader);  // only if still the cached one
            continue;
        }
        if (!status.ok()) {
            // A failed token fetch shows up here too, as UNAVAILABLE with the mca::Error message.
            std::cerr << "call failed: " << status.error_code() << " " << status.error_message() << "\n";
            return 1;
        }
        std::cout << "reply: " << reply << " (attempts: " << attempt << ")\n";
        return 0;
    }
}
