// The gRPC adapter against a real gRPC server over TLS (certificates made at test time with the
// openssl command) whose service accepts a call only when its `authorization` metadata holds a
// token that verifies against the loopback token server's key, and that token server counting
// the token requests.

#include <gtest/gtest.h>

#include "grpc_test_server.hpp"
#include "test_certificates.hpp"
#include "test_support.hpp"

#include <mca/grpc.hpp>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <sys/wait.h>

#include <atomic>
#include <future>
#include <thread>

namespace mca::test {
namespace {

constexpr const char* kMethod = "/mca.test.Echo/Call";

/// Starts one unary call with raw bytes; `done` receives its status.
void startEcho(const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context,
               const grpc::ByteBuffer& request, grpc::ByteBuffer& reply, std::function<void(grpc::Status)> done) {
    grpc::GenericStub stub(channel);
    stub.UnaryCall(&context, kMethod, grpc::StubOptions(), &request, &reply, std::move(done));
}

grpc::ByteBuffer bufferOf(const std::string& text) {
    grpc::Slice slice(text);
    return grpc::ByteBuffer(&slice, 1);
}

std::string textOf(const grpc::ByteBuffer& buffer) {
    std::vector<grpc::Slice> slices;
    std::string text;
    if (!buffer.Dump(&slices).ok()) return text;
    for (const auto& slice : slices) text.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    return text;
}

/// One unary call, waited for; checks the echo when it succeeds.
grpc::Status echo(const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& context,
                  const std::string& text = "ping") {
    const grpc::ByteBuffer request = bufferOf(text);
    grpc::ByteBuffer reply;
    std::promise<grpc::Status> done;
    startEcho(channel, context, request, reply, [&done](grpc::Status status) { done.set_value(std::move(status)); });
    grpc::Status status = done.get_future().get();
    if (status.ok()) {
        EXPECT_EQ(textOf(reply), text);
    }
    return status;
}

grpc::Status echo(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    return echo(channel, context);
}

class Grpc : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { certificates = std::make_unique<GrpcCertificates>(); }
    static void TearDownTestSuite() { certificates.reset(); }

    std::shared_ptr<grpc::ChannelCredentials> tls() const {
        grpc::SslCredentialsOptions options;
        options.pem_root_certs = certificates->caPem();
        return grpc::SslCredentials(options);
    }
    /// A TLS channel without call credentials.
    std::shared_ptr<grpc::Channel> plainChannel() const { return grpc::CreateChannel(service.target(), tls()); }

    ServerFixture tokens;
    GrpcTestServer service{*certificates, tokens.server.publicKeyPem()};
    std::shared_ptr<AuthClient> client = std::make_shared<AuthClient>();

    static inline std::unique_ptr<GrpcCertificates> certificates;
};

TEST_F(Grpc, ChannelCredentialsPutAVerifiedTokenOnEveryCallWithOneTokenRequest) {
    const auto channel = grpcChannel(service.target(), tls(), grpcCallCredentials(client, tokens.credentials()));
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(echo(channel).ok()) << i;
    EXPECT_EQ(service.accepted(), 20u);
    EXPECT_EQ(service.acceptedTokens().size(), 1u);
    EXPECT_EQ(tokens.server.tokenRequests(), 1u);
    EXPECT_EQ(client->stats().hits, 19u);  // every call after the first was a cache hit
}

TEST_F(Grpc, EveryCredentialsTypeAndTheTenantHandleWork) {
    tokens.server.addOAuth2Client("realm", {kClientId, ClientAuth::SecretBasic, kSecret, "", ""});
    OAuthCredentials oauth;
    oauth.clientId = kClientId;
    oauth.secret = kSecret;
    oauth.tokenUrl = tokens.server.tokenEndpoint("realm");
    const auto certificate = makeClientCertificate(kClientId);
    tokens.server.addCertificateClient(kAppId, certificate.certificatePem);
    const CertificateCredentials byCertificate{kAppId, certificate.certificatePem, certificate.privateKeyPem,
                                               tokens.server.baseUrl()};
    const std::shared_ptr<grpc::CallCredentials> credentials[] = {
        grpcCallCredentials(client, tokens.credentials()),
        grpcCallCredentials(client, client->tenant(tokens.credentials())),  // the same tenant: no request
        grpcCallCredentials(client, byCertificate),
        grpcCallCredentials(client, oauth),
    };
    const auto channel = plainChannel();
    for (const auto& each : credentials) {
        grpc::ClientContext context;
        context.set_credentials(each);
        const grpc::Status status = echo(channel, context);
        EXPECT_TRUE(status.ok()) << status.error_message();
    }
    EXPECT_EQ(service.accepted(), 4u);
    EXPECT_EQ(service.acceptedTokens().size(), 3u);
    EXPECT_EQ(tokens.server.tokenRequests(), 3u);
}

TEST_F(Grpc, PerCallCredentialsOnManyCallsMakeOneTokenRequest) {
    const auto channel = plainChannel();
    const auto shared = grpcCallCredentials(client, tokens.credentials());
    for (int i = 0; i < 20; ++i) {
        grpc::ClientContext context;
        // Half the calls share one credentials object, half make their own: one cache either way.
        context.set_credentials(i % 2 == 0 ? shared : grpcCallCredentials(client, tokens.credentials()));
        ASSERT_TRUE(echo(channel, context).ok()) << i;
    }
    EXPECT_EQ(service.accepted(), 20u);
    EXPECT_EQ(tokens.server.tokenRequests(), 1u);
}

TEST_F(Grpc, ACallsOwnCredentialsReplaceTheChannels) {
    tokens.server.addClient("other-app", kClientId, kSecret);
    const Credentials other{"other-app", kClientId, kSecret, tokens.server.baseUrl()};
    const auto channel = grpcChannel(service.target(), tls(), grpcCallCredentials(client, tokens.credentials()));
    grpc::ClientContext context;
    context.set_credentials(grpcCallCredentials(client, other));
    ASSERT_TRUE(echo(channel, context).ok());
    ASSERT_TRUE(echo(channel).ok());
    EXPECT_EQ(service.acceptedTokens().size(), 2u);  // one token each, one authorization entry per call
    EXPECT_EQ(tokens.server.tokenRequests(), 2u);
}

TEST_F(Grpc, ARefusedSecretFailsEveryCallWithTheLibrarysCodeName) {
    const Credentials wrong{kAppId, kClientId, "not-the-secret", tokens.server.baseUrl()};
    const auto channel = grpcChannel(service.target(), tls(), grpcCallCredentials(client, wrong));
    for (int i = 0; i < 5; ++i) {
        const grpc::Status status = echo(channel);
        // gRPC 1.51 reports every failure of a credentials plugin as UNAVAILABLE.
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << i;
        EXPECT_NE(status.error_message().find("TOKEN_GENERATE_ERROR"), std::string::npos) << status.error_message();
        EXPECT_EQ(status.error_message().find("not-the-secret"), std::string::npos) << status.error_message();
    }
    EXPECT_EQ(service.calls(), 0u);  // no call reached the server
    EXPECT_GE(tokens.server.tokenRequests(), 1u);
}

TEST_F(Grpc, AWaitingCallHoldsUpNoOtherCallAndFailsWithTheFetch) {
    Options options;
    options.timeout = std::chrono::seconds(5);
    client = std::make_shared<AuthClient>(options);
    tokens.server.addClient("other-app", kClientId, kSecret);
    const Credentials other{"other-app", kClientId, kSecret, tokens.server.baseUrl()};
    ASSERT_FALSE(client->getAuthorizationHeader(other).get().empty());  // cached
    Reply hang;
    hang.action = Action::Hang;
    tokens.server.setDefaultReply(hang);  // from now on, no token arrives
    const auto channel = plainChannel();

    grpc::ClientContext waiting;
    waiting.set_credentials(grpcCallCredentials(client, tokens.credentials()));
    const grpc::ByteBuffer request = bufferOf("ping");
    grpc::ByteBuffer reply;
    std::promise<grpc::Status> done;
    auto result = done.get_future();
    startEcho(channel, waiting, request, reply, [&done](grpc::Status status) { done.set_value(std::move(status)); });
    while (tokens.server.tokenRequests() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));

    // While that call waits for its token, a call with a cached token goes through.
    grpc::ClientContext cached;
    cached.set_credentials(grpcCallCredentials(client, other));
    EXPECT_TRUE(echo(channel, cached).ok());
    EXPECT_EQ(result.wait_for(std::chrono::seconds(0)), std::future_status::timeout);

    const grpc::Status status = result.get();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_NE(status.error_message().find("TIMEOUT_ERROR"), std::string::npos) << status.error_message();
    EXPECT_EQ(service.calls(), 1u);  // only the cached one reached the server
}

TEST_F(Grpc, ConcurrentCallsFromSeveralThreadsOnOneChannelMakeOneTokenRequest) {
    const auto channel = grpcChannel(service.target(), tls(), grpcCallCredentials(client, tokens.credentials()));
    std::atomic<int> succeeded{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10; ++i) {
                if (echo(channel).ok()) ++succeeded;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(succeeded.load(), 80);
    EXPECT_EQ(service.accepted(), 80u);
    EXPECT_EQ(service.acceptedTokens().size(), 1u);
    EXPECT_EQ(tokens.server.tokenRequests(), 1u);
}

TEST_F(Grpc, ConcurrentPerCallCredentialsFromSeveralThreadsMakeOneTokenRequest) {
    const auto channel = plainChannel();
    const Tenant tenant = client->tenant(tokens.credentials());
    // Many calls in flight at once from each thread, all started before the first token arrives.
    std::atomic<int> succeeded{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            constexpr int kCalls = 10;
            std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
            std::vector<grpc::ByteBuffer> replies(kCalls);
            std::vector<std::promise<grpc::Status>> done(kCalls);
            const grpc::ByteBuffer request = bufferOf("ping");
            for (int i = 0; i < kCalls; ++i) {
                contexts.push_back(std::make_unique<grpc::ClientContext>());
                contexts.back()->set_credentials(grpcCallCredentials(client, tenant));
                startEcho(channel, *contexts.back(), request, replies[i],
                          [&done, i](grpc::Status status) { done[i].set_value(std::move(status)); });
            }
            for (int i = 0; i < kCalls; ++i) {
                if (done[i].get_future().get().ok() && textOf(replies[i]) == "ping") ++succeeded;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(succeeded.load(), 40);
    EXPECT_EQ(service.accepted(), 40u);
    EXPECT_EQ(tokens.server.tokenRequests(), 1u);
}

TEST_F(Grpc, TheObserverSeesTheRefusedHeaderAndInvalidatingItFetchesOneNewToken) {
    service.refuseFirstToken();
    const Tenant tenant = client->tenant(tokens.credentials());
    const auto channel = plainChannel();
    std::string sent[2];
    for (int attempt = 0; attempt < 2; ++attempt) {
        grpc::ClientContext context;
        context.set_credentials(grpcCallCredentials(
            client, tenant, [&sent, attempt](const std::string& header) { sent[attempt] = header; }));
        const grpc::Status status = echo(channel, context);
        if (attempt == 0) {
            ASSERT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
            client->invalidate(tenant, sent[0]);
            client->invalidate(tenant, sent[0]);  // a second refusal of the same header changes nothing
        } else {
            EXPECT_TRUE(status.ok()) << status.error_message();
        }
    }
    EXPECT_EQ(sent[0].rfind("Bearer ", 0), 0u);
    EXPECT_NE(sent[0], sent[1]);
    EXPECT_EQ(service.acceptedTokens(), std::set<std::string>{sent[1].substr(7)});
    EXPECT_EQ(tokens.server.tokenRequests(), 2u);
}

TEST_F(Grpc, AnInsecureChannelNeverSendsTheToken) {
    const auto channel = grpcChannel(service.plainTarget(), grpc::InsecureChannelCredentials(),
                                     grpcCallCredentials(client, tokens.credentials()));
    const grpc::Status status = echo(channel);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
    EXPECT_EQ(service.calls(), 0u);
    EXPECT_EQ(tokens.server.tokenRequests(), 0u);
}

TEST_F(Grpc, LocalCredentialsOverAUnixSocketCarryTheToken) {
    const auto channel = grpcChannel(service.localTarget(), grpc::experimental::LocalCredentials(UDS),
                                     grpcCallCredentials(client, tokens.credentials()));
    const grpc::Status status = echo(channel);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(service.accepted(), 1u);
}

TEST_F(Grpc, GrpcCompositionRefusesTheseCredentialsIn151) {
    // Documented: CompositeChannelCredentials only takes call credentials gRPC made itself.
    EXPECT_EQ(grpc::CompositeChannelCredentials(tls(), grpcCallCredentials(client, tokens.credentials())), nullptr);
    EXPECT_THROW(grpcCallCredentials(nullptr, tokens.credentials()), std::invalid_argument);
}

#ifdef MCA_GRPC_CLIENT_EXAMPLE
TEST_F(Grpc, TheExampleRetriesOnceAfterARefusedToken) {
    service.refuseFirstToken();
    const std::string environment = "GRPC_TARGET=" + service.target() +
                                    " GRPC_ROOT_CERTS=" + certificates->caFile().string() + " MCA_APP_ID=" + kAppId +
                                    " MCA_CLIENT_ID=" + kClientId + " MCA_SECRET=" + kSecret +
                                    " MCA_SERVER_URL=" + tokens.server.baseUrl();
    const std::string output = (certificates->directory / "example.out").string();
    const int status =
        std::system(("env -i " + environment + " " + MCA_GRPC_CLIENT_EXAMPLE + " >" + output + " 2>&1").c_str());
    const std::string printed = readTextFile(output);
    ASSERT_TRUE(WIFEXITED(status)) << printed;
    EXPECT_EQ(WEXITSTATUS(status), 0) << printed;
    EXPECT_NE(printed.find("reply: hello (attempts: 2)"), std::string::npos) << printed;
    EXPECT_EQ(service.refused(), 1u);
    EXPECT_EQ(service.accepted(), 1u);
    EXPECT_EQ(tokens.server.tokenRequests(), 2u);
}
#endif

}  // namespace
}  // namespace mca::test
