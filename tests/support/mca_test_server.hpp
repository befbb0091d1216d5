// A loopback HTTP(S) server that speaks the IBM Mobile Client Access (MCA)
// token protocol, for the mca-oauth tests and demo.
//
//   POST /imf-authserver/authorization/v1/apps/{appId}/token      (Basic or IMFCert, client_credentials)
//   GET  /imf-authserver/authorization/v1/apps/{appId}/publickey  (RSA JWK of the signing key)
//   POST /oauth/v4/{tenantId}/token                               (App ID, RFC 6749 section 4.4)
//
// Tokens are RS256 JWTs. Token requests can be scripted (`pushReply`) to fail
// in the ways a real network and server can: error statuses, garbage bodies,
// dropped connections, slow or hanging replies, redirects.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mca::test {

struct RecordedRequest {
    std::string method, target, version;  // target as sent, e.g. "/imf-authserver/authorization/v1/apps/a%20b/token"
    std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
    std::string body;
    std::string header(std::string_view name) const;  // case-insensitive, "" when absent
    std::uint64_t connectionId = 0;                   // which accepted connection carried it (1, 2, ...)
};

enum class Action {
    Normal,   // answer as the protocol says (status may still be overridden by `status`)
    Status,   // reply `status` with `body` (and `headers`) verbatim (only Date, Content-Length, Connection added)
    RawBody,  // reply 200 application/json with `body` verbatim (garbage, wrong shapes, huge bodies...)
    DropBeforeReply,  // read the request, then close the connection without a byte
    DropMidReply,     // send the status line, headers (Content-Length of the full reply) and half the body, then close
    Trickle,          // send the normal reply one byte per `trickleInterval`
    Hang,             // read the request and never answer (until the server stops or the client closes)
    Redirect,         // reply `status` (default 302 if status==200) with `Location: <location>` and an empty body
};

// One scripted behaviour for a token request.
struct Reply {
    Action action = Action::Normal;
    int status = 200;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers, e.g. {"Retry-After","1"}
    std::chrono::milliseconds delay{0};                        // wait before answering
    std::chrono::milliseconds trickleInterval{1000};
    std::string location;
    std::optional<long long> expiresIn;  // Normal: overrides the default expires_in in the JSON for this reply
    bool omitExpiresIn = false;          // Normal: leave expires_in out of the JSON
};

struct ServerOptions {
    std::string tlsCertFile, tlsKeyFile;  // both set = HTTPS (PEM files); empty = plain HTTP
    std::uint16_t port = 0;               // 0 = ephemeral
    long long expiresIn = 3600;           // default expires_in (and JWT exp - iat)
    std::size_t tokenPadding = 0;         // bytes of "pad" claim in each JWT
};

// Binds 127.0.0.1 only. Every method is thread-safe while serving.
//
// The RSA signing key is generated once per process and shared by all
// servers: 2048-bit key generation takes up to a second, far too slow to
// repeat for every test.
//
// A token request takes its behaviour from, in order: the next scripted reply
// (`pushReply`), else a 503 if `setFailEvery` selects it, else the default
// reply (`setDefaultReply`), else Action::Normal. `setDelay` applies to all.
class McaTestServer {
  public:
    explicit McaTestServer(ServerOptions options = {});  // binds and starts serving before returning; throws on failure
    ~McaTestServer();  // closes the listener and all connections, joins every thread, returns promptly
    McaTestServer(const McaTestServer&) = delete;
    McaTestServer& operator=(const McaTestServer&) = delete;

    std::uint16_t port() const;
    std::string baseUrl() const;  // "http://127.0.0.1:PORT/imf-authserver" (https:// when TLS)
    // App ID's oauthServerUrl: "http://127.0.0.1:PORT/oauth/v4/<tenantId>" (https:// when TLS;
    // the tenantId percent-encoded but for RFC 3986 unreserved characters). Token URL: + "/token".
    std::string oauthServerUrl(const std::string& tenantId) const;

    void addClient(std::string appId, std::string clientId, std::string secret);
    // Certificate flow (the Node SDK's getAuthorizationHeaderByCertificate) on the MCA token endpoint:
    //   Authorization: IMFCert <compact RS256 JWS>, header {"alg":"RS256","x5c":"<base64 DER>"}
    //   (x5c a string, or an array whose first element is used; missing "=" padding tolerated),
    //   payload {"timestamp": <ms since the epoch>}; form grant_type=client_credentials&client_id=<CN>.
    // Checked in this order; the first failure is the 401 invalid_client's error_description
    // and lastCertificateCheck():
    //   "malformed form body", "malformed JWS", "malformed JWS header", "alg is not RS256",
    //   "missing or malformed x5c", "x5c is not a DER certificate", "certificate key is not RSA",
    //   "signature does not verify", "certificate has no CN", "client_id missing or repeated",
    //   "certificate CN does not match client_id", "certificate not registered for this app",
    //   "missing timestamp", "timestamp not within 5 minutes".
    // Then grant_type is checked as for Basic (400), and the token's prn is the CN.
    // Registration compares DER bytes; throws std::invalid_argument when there is no PEM certificate.
    void addCertificateClient(std::string appId, std::string certificatePem);
    // App ID clients of POST /oauth/v4/{tenantId}/token. Basic credentials are decoded per
    // RFC 6749 section 2.3.1 (base64, split at the first ':', then form-urlencoded decoding of
    // each part). Reply: {"access_token","token_type":"Bearer","expires_in","scope" (when a
    // non-empty scope was asked)}, JWT claims iss (= oauthServerUrl), aud (= tenantId), sub
    // (= clientId), scope, iat, exp, jti. Errors per RFC 6749 section 5.2: 401 invalid_client,
    // 400 invalid_request / unsupported_grant_type. Counted and scripted like MCA token requests.
    void addOAuthClient(std::string tenantId, std::string clientId, std::string secret);
    void setExpiresIn(long long seconds);  // default expires_in from now on
    void setTokenPadding(std::size_t bytes);
    void setDelay(std::chrono::milliseconds d);    // added before every token reply (default 0)
    void pushReply(Reply r);                       // scripted replies, consumed FIFO by token requests (one each)
    void setDefaultReply(std::optional<Reply> r);  // used once the FIFO is empty (nullopt = Normal)
    void setFailEvery(unsigned n);                 // 0 = off; else every n-th token request gets 503

    std::size_t tokenRequests() const;  // token POSTs fully read (before any fault), whatever the answer
    std::size_t connectionsAccepted() const;
    std::size_t openConnections() const;
    std::size_t peakOpenConnections() const;  // most connections open at once since the server started
    // Every complete request received, in arrival order (token and others).
    // Malformed or oversized requests are answered 4xx and not recorded.
    std::vector<RecordedRequest> requests() const;
    void clearRequests();
    std::string publicKeyPem() const;  // SubjectPublicKeyInfo PEM of the signing key
    std::string lastIssuedToken() const;
    // "ok" or the failed check (see addCertificateClient) of the last IMFCert token request whose
    // reply ran the protocol (Normal, DropMidReply, Trickle; not Status, RawBody, Redirect,
    // DropBeforeReply, Hang); "" before any.
    std::string lastCertificateCheck() const;

  private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

// Checks the RS256 signature (and the "alg" header) of a compact JWS; false on any problem.
bool verifyRs256Jwt(const std::string& jwt, const std::string& publicKeyPem);

// Decodes the payload of a compact JWS; throws std::invalid_argument (or a
// nlohmann::json exception) when it is malformed.
nlohmann::json decodeJwtPayload(const std::string& jwt);

}  // namespace mca::test
