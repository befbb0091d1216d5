// A loopback HTTP(S) server that speaks the IBM Mobile Client Access (MCA)
// token protocol, for the mca-oauth tests and demo.
//
//   POST /imf-authserver/authorization/v1/apps/{appId}/token      (Basic or IMFCert, client_credentials)
//   GET  /imf-authserver/authorization/v1/apps/{appId}/publickey  (RSA JWK of the signing key)
//   POST /oauth/v4/{tenantId}/token                               (App ID, RFC 6749 section 4.4)
//   POST /realms/{realm}/protocol/openid-connect/token             (any OAuth 2.0 server: every
//        client authentication method of RFC 6749, RFC 7523 and RFC 8705, see addOAuth2Client)
//   GET  /realms/{realm}/protocol/openid-connect/certs             (JWKS of the signing key)
//   GET  /.well-known/oauth-authorization-server/realms/{realm}    (RFC 8414 metadata)
//   GET  /realms/{realm}/.well-known/openid-configuration          (OpenID Connect Discovery)
//   GET  /resource                                                 (a protected resource: Bearer tokens it signed)
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

// How a client of a realm authenticates at its token endpoint.
enum class ClientAuth {
    SecretBasic,    // client_secret_basic: Authorization: Basic (RFC 6749 section 2.3.1)
    SecretPost,     // client_secret_post: client_id and client_secret in the form
    PrivateKeyJwt,  // private_key_jwt: a signed client_assertion (RFC 7523 section 2.2)
    TlsClientAuth,  // tls_client_auth: the client certificate of the TLS handshake (RFC 8705 section 2)
};
// "client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth".
const char* clientAuthName(ClientAuth method);

struct OAuth2Client {
    std::string clientId;
    ClientAuth method = ClientAuth::SecretBasic;
    std::string secret;  // SecretBasic / SecretPost
    std::string
        publicKeyPem;  // PrivateKeyJwt: a SubjectPublicKeyInfo PEM, or a certificate PEM (its public key is used)
    std::string certificatePem;  // TlsClientAuth: the certificate the client must present (compared as DER of the leaf)
};

enum class DiscoveryDocument {
    OAuthAuthorizationServer,  // GET /.well-known/oauth-authorization-server/realms/{realm}
    OpenIdConfiguration,       // GET /realms/{realm}/.well-known/openid-configuration
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

    // Realms: an authorization server of any vendor, identified by issuer(realm). A realm exists
    // once addOAuth2Client, setSupportedAuthMethods or setDiscoveryReply names it; its discovery
    // documents are 404 before. Realm names are [A-Za-z0-9._-]+ but not "." or ".."
    // (std::invalid_argument otherwise, from every method taking one).
    //
    // Token endpoint (POST tokenEndpoint(realm), client_credentials only), errors per RFC 6749
    // section 5.2. Counted and scripted exactly like MCA token requests. Checked in this order:
    //   the form (400 invalid_request "malformed form body"); no parameter twice but `resource`
    //   (400 invalid_request "repeated parameter <name>"); the client authentication method, from
    //   what is present: Authorization: Basic (decoded as for addOAuthClient), client_assertion,
    //   client_secret, else client_id alone = tls_client_auth; more than one: 400 invalid_request
    //   "more than one client authentication method". Then each a 401 invalid_client:
    //   "no client authentication", "malformed Basic credentials", "client_id does not match the
    //   Basic credentials", "client_secret without client_id", "client_assertion_type is not
    //   jwt-bearer", "malformed client assertion", "client assertion names no client",
    //   "unknown client", "client authentication method not allowed", "wrong secret";
    //   private_key_jwt, in this order: "alg is not RS256, PS256 or ES256", "alg does not fit the
    //   key", "signature does not verify", "typ is not JWT", "iss and sub must both be the client
    //   id", "client_id does not match the assertion", "aud is not the token endpoint", "missing
    //   exp", "assertion expired", "exp more than 10 minutes ahead", "iat is not a number", "iat in the future" (more
    //   than 60 s), "missing jti", "jti replayed" (per client); tls_client_auth: "no client certificate" (always so
    //   over plain HTTP), "client certificate does not match". Then grant_type as for addOAuthClient (400).
    // A TLS server requests (never requires) a client certificate on every connection and accepts
    // any: only this endpoint looks at it.
    // Success: 200 {"access_token","token_type":"Bearer","expires_in","scope" (when a non-empty
    // scope was asked)}; the token's claims: iss = issuer(realm), sub = client_id = the client id,
    // aud = the `resource` values (a string for one, an array for several), else the `audience`
    // field, else the client id; scope when asked; iat, exp, jti; and for tls_client_auth
    // cnf {"x5t#S256": base64url(SHA-256(certificate DER))} (RFC 8705 section 3.1).
    // Adding a client id again replaces the client. Throws std::invalid_argument when the key or
    // certificate the method needs is not PEM.
    void addOAuth2Client(const std::string& realm, OAuth2Client client);
    std::string issuer(const std::string& realm) const;         // "{http|https}://127.0.0.1:PORT/realms/{realm}"
    std::string tokenEndpoint(const std::string& realm) const;  // issuer(realm) + "/protocol/openid-connect/token"
    // Discovery documents, both by default {"issuer","token_endpoint","jwks_uri",
    // "token_endpoint_auth_methods_supported","token_endpoint_auth_signing_alg_values_supported",
    // "grant_types_supported":["client_credentials"],"tls_client_certificate_bound_access_tokens":true}.
    // `reply` scripts every GET of that document until reset with nullopt (= the correct one):
    // Action::Normal (the document; a status other than 200 and the headers apply), Status, RawBody,
    // Redirect, Drop*, Trickle, Hang, and its delay, as for token requests (setDelay does not apply).
    void setDiscoveryReply(const std::string& realm, DiscoveryDocument which, std::optional<Reply> reply);
    // token_endpoint_auth_methods_supported of both documents; by default all four method names;
    // an empty vector leaves the field out. The token endpoint does not consult it.
    void setSupportedAuthMethods(const std::string& realm, std::vector<std::string> methods);
    std::size_t discoveryRequests() const;  // GETs of either discovery document, of any realm
    // "ok" once the client authenticated, else the error_description of the reply that refused the
    // request before that (see addOAuth2Client), of the last realm token request whose reply ran
    // the protocol (as for lastCertificateCheck); "" before any.
    std::string lastClientAuthCheck() const;
    // Of every realm token request received, whatever the scripted reply: the decoded JOSE header
    // and claims of its client_assertion (null json while none was received; null too when the
    // last one was not a decodable JWS), and its form fields, decoded, in order.
    nlohmann::json lastClientAssertionHeader() const;
    nlohmann::json lastClientAssertionClaims() const;
    std::vector<std::pair<std::string, std::string>> lastTokenForm() const;

    void setExpiresIn(long long seconds);  // default expires_in from now on
    void setTokenPadding(std::size_t bytes);
    void setDelay(std::chrono::milliseconds d);    // added before every token reply (default 0)
    void pushReply(Reply r);                       // scripted replies, consumed FIFO by token requests (one each)
    void setDefaultReply(std::optional<Reply> r);  // used once the FIFO is empty (nullopt = Normal)
    void setFailEvery(unsigned n);                 // 0 = off; else every n-th token request gets 503

    std::size_t tokenRequests() const;  // token POSTs fully read (before any fault), whatever the answer

    // A protected resource, as the services an AuthClient's headers are for: GET resourceUrl()
    // answers 200 {"resource":"ok","sub":<the token's sub, else prn>} when the request carries
    // `Authorization: Bearer <token>` and the token is a JWT signed by this server (by any of its
    // token endpoints), not expired (`exp`) and not revoked. Otherwise 401 invalid_token (the
    // error_description says why: "no Bearer token", "token not signed by this server", "token
    // expired", "token revoked") with `WWW-Authenticate: Bearer error="invalid_token"`. Not a token
    // request: not counted by tokenRequests(), and setDelay and scripted replies do not apply.
    std::string resourceUrl() const;  // "{http|https}://127.0.0.1:PORT/resource"
    // The resource refuses this token from now on: `header` is "Bearer <token>" (as refused) or the
    // bare token. Tokens are compared exactly.
    void revokeToken(const std::string& header);
    // The next `count` tokens issued (by any token endpoint) are revoked as they are issued: the
    // client gets them, the resource refuses them. mca-test-server --revoke-first-tokens N.
    void revokeNextTokens(std::size_t count);
    std::size_t resourceRequests() const;  // GETs of the resource received, whatever the answer
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

// Verifies a compact JWS with alg RS256, PS256 (RSASSA-PSS with SHA-256, MGF1-SHA-256 and a salt of
// exactly 32 bytes, RFC 7518 section 3.5) or ES256 (a 64-byte r||s signature, RFC 7518 section
// 3.4), written independently of the library's signer so that it can check it. `keyPem`: a public
// key, private key or certificate PEM. On failure returns false and, when `why` is given, puts the
// reason there ("malformed JWS", "alg is not RS256, PS256 or ES256", "alg does not fit the key",
// "signature does not verify", "no key in PEM").
bool verifyJws(const std::string& jws, const std::string& keyPem, std::string* why = nullptr);

// Makes a client assertion as a workload identity provider would: header {"alg":alg,"typ":"JWT"}
// (+ "kid" when not empty), payload `claims`; alg RS256, PS256 (salt 32) or ES256 (r||s).
// Throws std::invalid_argument for another alg, one that does not fit the key, or a bad PEM.
std::string signJws(const std::string& privateKeyPem, const std::string& alg, const nlohmann::json& claims,
                    const std::string& kid = "");

// Decodes the payload of a compact JWS; throws std::invalid_argument (or a
// nlohmann::json exception) when it is malformed.
nlohmann::json decodeJwtPayload(const std::string& jwt);

}  // namespace mca::test
