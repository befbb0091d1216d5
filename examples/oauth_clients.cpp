// Clients of any OAuth 2.0 authorization server (mca::OAuthCredentials): one function per way a
// client authenticates, and per server that wants something extra in the form. Run it without
// arguments for the usage; with arguments it fetches one header and prints its size.
//
//   OAUTH_CLIENT_ID=my-client OAUTH_SECRET=... ./oauth_clients secret_basic https://id.example.com/token
//   OAUTH_CLIENT_ID=my-client ./oauth_clients private_key_jwt https://id.example.com/token client-key.pem

#include <mca/auth_client.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage = R"(usage: oauth_clients METHOD ENDPOINT [ARGUMENTS]

  secret_basic    TOKEN_URL
  secret_post     TOKEN_URL
  private_key_jwt TOKEN_URL KEY_PEM [CERTIFICATE_PEM]
  tls_client_auth TOKEN_URL CERTIFICATE_PEM KEY_PEM
  kubernetes      TOKEN_URL [TOKEN_FILE]
  discovery       ISSUER
  app_id          OAUTH_SERVER_URL
  entra_id        TENANT_ID API_APP_ID_URI KEY_PEM CERTIFICATE_PEM
  auth0           DOMAIN API_IDENTIFIER
  resource        TOKEN_URL RESOURCE_URI

The client id is read from OAUTH_CLIENT_ID, the secret from OAUTH_SECRET.
)";

std::string fromEnvironment(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr ? value : "";
}

std::string readFile(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream contents;
    if (!file || !(contents << file.rdbuf())) throw std::runtime_error("cannot read " + path);
    return contents.str();
}

// client_secret_basic: the id and secret, form-encoded, in an `Authorization: Basic` header.
mca::OAuthCredentials secretBasic(const std::string& tokenUrl) {
    mca::OAuthCredentials client;
    client.clientId = fromEnvironment("OAUTH_CLIENT_ID");
    client.secret = fromEnvironment("OAUTH_SECRET");
    client.tokenUrl = tokenUrl;
    client.authMethod = mca::ClientAuthMethod::SecretBasic;
    return client;
}

// client_secret_post: client_id and client_secret in the form body.
mca::OAuthCredentials secretPost(const std::string& tokenUrl) {
    mca::OAuthCredentials client;
    client.clientId = fromEnvironment("OAUTH_CLIENT_ID");
    client.secret = fromEnvironment("OAUTH_SECRET");
    client.tokenUrl = tokenUrl;
    client.authMethod = mca::ClientAuthMethod::SecretPost;
    return client;
}

// private_key_jwt: a new assertion signed with the key for every request. The server holds the
// public key (or the certificate); the private key never leaves this process.
mca::OAuthCredentials privateKeyJwt(const std::string& tokenUrl, const std::string& keyFile) {
    mca::OAuthCredentials client;
    client.clientId = fromEnvironment("OAUTH_CLIENT_ID");
    client.tokenUrl = tokenUrl;
    client.authMethod = mca::ClientAuthMethod::PrivateKeyJwt;
    client.privateKeyPem = readFile(keyFile);        // RSA (2048 bits or more) or EC P-256, unencrypted
    client.keyId = fromEnvironment("OAUTH_KEY_ID");  // the `kid` the server knows the key by, if any
    return client;
}

// tls_client_auth (RFC 8705): the client certificate authenticates the TLS connection itself.
mca::OAuthCredentials tlsClientAuth(const std::string& tokenUrl, const std::string& certificateFile,
                                    const std::string& keyFile) {
    mca::OAuthCredentials client;
    client.clientId = fromEnvironment("OAUTH_CLIENT_ID");
    client.tokenUrl = tokenUrl;  // https only
    client.authMethod = mca::ClientAuthMethod::TlsClientAuth;
    client.certificatePem = readFile(certificateFile);
    client.privateKeyPem = readFile(keyFile);
    return client;
}

// A Kubernetes projected service-account token as the client assertion: the kubelet rotates the
// file, the client reads it again when it changes.
mca::OAuthCredentials kubernetesServiceAccount(const std::string& tokenUrl, const std::string& tokenFile) {
    mca::OAuthCredentials client;
    client.clientId = fromEnvironment("OAUTH_CLIENT_ID");
    client.tokenUrl = tokenUrl;
    client.authMethod = mca::ClientAuthMethod::ClientAssertion;
    client.assertionFile = tokenFile;  // e.g. /var/run/secrets/tokens/oauth, a projected volume
    return client;
}

// No token URL: it is discovered from the issuer's metadata (RFC 8414, then OpenID Connect).
mca::OAuthCredentials discovered(const std::string& issuer) {
    mca::OAuthCredentials client;
    client.clientId = fromEnvironment("OAUTH_CLIENT_ID");
    client.secret = fromEnvironment("OAUTH_SECRET");
    client.issuer = issuer;  // exactly as the server's metadata names it
    client.authMethod = mca::ClientAuthMethod::SecretBasic;
    return client;
}

// App ID: the binding's oauthServerUrl, e.g. https://us-south.appid.cloud.ibm.com/oauth/v4/<tenantId>.
mca::OAuthCredentials appId(const std::string& oauthServerUrl) {
    mca::OAuthCredentials client;
    client.clientId = fromEnvironment("OAUTH_CLIENT_ID");
    client.secret = fromEnvironment("OAUTH_SECRET");
    client.tokenUrl = oauthServerUrl + "/token";  // or: client.issuer = oauthServerUrl;
    client.authMethod = mca::ClientAuthMethod::SecretBasic;
    return client;
}

// Microsoft Entra ID with a certificate: the v2.0 endpoint, one resource's `.default` scope, and
// an assertion whose header carries the certificate's SHA-256 thumbprint (x5t#S256).
mca::OAuthCredentials entraId(const std::string& tenantId, const std::string& apiAppIdUri, const std::string& keyFile,
                              const std::string& certificateFile) {
    mca::OAuthCredentials client;
    client.clientId = fromEnvironment("OAUTH_CLIENT_ID");  // the application (client) ID
    client.tokenUrl = "https://login.microsoftonline.com/" + tenantId + "/oauth2/v2.0/token";
    client.authMethod = mca::ClientAuthMethod::PrivateKeyJwt;
    client.privateKeyPem = readFile(keyFile);
    client.certificatePem = readFile(certificateFile);  // the certificate uploaded to the app registration
    client.signingAlg = "PS256";
    client.scope = apiAppIdUri + "/.default";  // e.g. api://<app-id>/.default, https://graph.microsoft.com/.default
    return client;
}

// Auth0: the API's identifier goes in the `audience` form field.
mca::OAuthCredentials auth0(const std::string& domain, const std::string& apiIdentifier) {
    mca::OAuthCredentials client;
    client.clientId = fromEnvironment("OAUTH_CLIENT_ID");
    client.secret = fromEnvironment("OAUTH_SECRET");
    client.tokenUrl = "https://" + domain + "/oauth/token";
    client.authMethod = mca::ClientAuthMethod::SecretPost;
    client.audience = apiIdentifier;  // e.g. https://api.example.com
    return client;
}

// RFC 8707 resource indicators: the token is for these resource servers only.
mca::OAuthCredentials forResource(const std::string& tokenUrl, const std::string& resource) {
    mca::OAuthCredentials client = secretBasic(tokenUrl);
    client.resources = {resource};  // one `resource` form field each, e.g. https://api.example.com/
    return client;
}

/// The credentials the command line asks for; std::invalid_argument for a bad command line.
mca::OAuthCredentials credentialsFor(const std::string& method, const std::vector<std::string>& args) {
    const auto arg = [&args](std::size_t i) -> const std::string& {
        if (i >= args.size()) throw std::invalid_argument("missing argument");
        return args[i];
    };
    const auto argOr = [&args](std::size_t i, const char* otherwise) {
        return i < args.size() ? args[i] : std::string(otherwise);
    };
    if (method == "secret_basic") return secretBasic(arg(0));
    if (method == "secret_post") return secretPost(arg(0));
    if (method == "private_key_jwt") {
        mca::OAuthCredentials client = privateKeyJwt(arg(0), arg(1));
        if (args.size() > 2) client.certificatePem = readFile(args[2]);  // adds the x5t#S256 header
        return client;
    }
    if (method == "tls_client_auth") return tlsClientAuth(arg(0), arg(1), arg(2));
    if (method == "kubernetes") return kubernetesServiceAccount(arg(0), argOr(1, "/var/run/secrets/tokens/oauth"));
    if (method == "discovery") return discovered(arg(0));
    if (method == "app_id") return appId(arg(0));
    if (method == "entra_id") return entraId(arg(0), arg(1), arg(2), arg(3));
    if (method == "auth0") return auth0(arg(0), arg(1));
    if (method == "resource") return forResource(arg(0), arg(1));
    throw std::invalid_argument("unknown method " + method);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << kUsage;
        return 2;
    }
    try {
        mca::Options options;
        options.oauth = credentialsFor(argv[1], std::vector<std::string>(argv + 2, argv + argc));
        mca::AuthClient client(options);
        const std::string header = client.getAuthorizationHeader().get();
        std::cout << "got a header of " << header.size() << " bytes\n";
        return 0;
    } catch (const std::invalid_argument& error) {
        std::cerr << "oauth_clients: " << error.what() << "\n" << kUsage;
        return 2;
    } catch (const std::exception& error) {
        std::cerr << error.what() << "\n";  // an mca::Error: the OAuth error and its description
        return 1;
    }
}
