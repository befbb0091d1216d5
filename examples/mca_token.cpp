// mca-token: prints the Authorization header for a tenant, for scripts and for checking a
// deployment's credentials. Run `mca-token --help`.

#include <mca/auth_client.hpp>

#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr const char* kUsage = R"(usage: mca-token [options]

Prints "Bearer <token>" for the given tenant. Options not given are read from the Cloud Foundry
environment (VCAP_SERVICES, VCAP_APPLICATION) as the Node SDK reads them.

  --app-id ID          tenant id (appId)
  --client-id ID       client id
  --secret-file PATH   read the secret from a file (or set MCA_SECRET; never pass it as an argument)
  --server-url URL     MCA server, e.g. https://imf-authserver.ng.bluemix.net/imf-authserver
  --token-url URL      full token endpoint of App ID or another OAuth 2.0 server, instead of the MCA path
  --scope SCOPE        OAuth scope to ask for
  --cert-dir DIR       certificate flow: DIR/imf_certificate/{public-certificate,private-key}.pem,
                       server from --server-url or the imfServiceUrl variable

Any OAuth 2.0 server (with --client-id, and --token-url or --issuer):
  --issuer URL         discover the token endpoint from the issuer's metadata (RFC 8414, OIDC)
  --auth-method M      client_secret_basic (default), client_secret_post, private_key_jwt,
                       tls_client_auth or client_assertion
  --key-file PATH      private_key_jwt: the signing key; tls_client_auth: the certificate's key (PEM)
  --cert-file PATH     tls_client_auth: the client certificate; private_key_jwt: adds x5t#S256
  --kid ID             private_key_jwt: the key id header
  --alg ALG            private_key_jwt: RS256, PS256 or ES256 (default from the key)
  --assertion-file P   client_assertion: the assertion file (e.g. a Kubernetes service-account token)
  --resource URI       RFC 8707 resource (repeatable)
  --audience AUD       the audience form field
  --param NAME=VALUE   any other form field (repeatable)

Transport and output:
  --ca-info PATH       PEM CA bundle for HTTPS (default: the system trust store)
  --proxy URL          proxy for the token request (default: http_proxy / https_proxy)
  --timeout SECONDS    budget for the fetch, retries included (default 10)
  --json               print {"header", "expiresAt", "tenant"} as JSON
  --verbose            log what the client does to stderr (never secrets or tokens)
  --help               this text

exit codes: 0 header printed, 2 bad usage, 3 missing or invalid configuration, 4 the server
refused (TOKEN_GENERATE_ERROR), 5 network error or timeout, 6 invalid reply from the server
)";

enum ExitCode { kOk = 0, kBadUsage = 2, kConfiguration = 3, kRefused = 4, kUnreachable = 5, kInvalidReply = 6 };

ExitCode exitCodeFor(mca::Errc code) {
    switch (code) {
        case mca::Errc::TokenGenerate:
            return kRefused;
        case mca::Errc::Network:
        case mca::Errc::Timeout:
        case mca::Errc::Shutdown:
            return kUnreachable;
        case mca::Errc::InvalidResponse:
            return kInvalidReply;
        default:
            return kConfiguration;  // Missing*, MissingPem, InvalidCertificate
    }
}

std::string readFile(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream contents;
    if (!file || !(contents << file.rdbuf())) throw mca::Error(mca::Errc::MissingPem, "cannot read " + path);
    return contents.str();
}

mca::ClientAuthMethod authMethodNamed(const std::string& name) {
    if (name == "client_secret_basic") return mca::ClientAuthMethod::SecretBasic;
    if (name == "client_secret_post") return mca::ClientAuthMethod::SecretPost;
    if (name == "private_key_jwt") return mca::ClientAuthMethod::PrivateKeyJwt;
    if (name == "tls_client_auth") return mca::ClientAuthMethod::TlsClientAuth;
    if (name == "client_assertion") return mca::ClientAuthMethod::ClientAssertion;
    throw std::invalid_argument("unknown --auth-method " + name);
}

std::string readSecretFile(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream contents;
    if (!file || !(contents << file.rdbuf())) throw mca::Error(mca::Errc::MissingSecret, "cannot read " + path);
    std::string secret = contents.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    return secret;
}

/// The claims of a JWT access token (for --json), or an empty object when it is not a JWT.
nlohmann::json claimsOf(const std::string& header) {
    const std::string token = header.substr(header.find(' ') + 1);
    const auto first = token.find('.'), second = token.find('.', first + 1);
    if (first == std::string::npos || second == std::string::npos) return nlohmann::json::object();
    std::string payload = token.substr(first + 1, second - first - 1);
    for (char& c : payload) c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (payload.size() % 4 != 0) payload += '=';
    std::string decoded(payload.size(), '\0');
    const int length =
        EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                        reinterpret_cast<const unsigned char*>(payload.data()), static_cast<int>(payload.size()));
    if (length < 0) return nlohmann::json::object();
    auto claims = nlohmann::json::parse(decoded.c_str(), nullptr, false);  // c_str: drops the padding's NULs
    return claims.is_object() ? claims : nlohmann::json::object();
}

std::string isoTime(std::time_t time) {
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&time));
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    mca::Options options;
    mca::OAuthCredentials oauth;
    bool oauthFlags = false;  // any flag of the OAuth client: the credentials are an OAuthCredentials
    std::string certificateDirectory;
    bool json = false;
    const std::vector<std::string> args(argv + 1, argv + argc);
    try {
        for (std::size_t i = 0; i < args.size(); ++i) {
            const std::string& flag = args[i];
            const auto value = [&]() -> const std::string& {
                if (i + 1 >= args.size()) throw std::invalid_argument(flag + " needs a value");
                return args[++i];
            };
            if (flag == "--help" || flag == "-h") {
                std::cout << kUsage;
                return kOk;
            } else if (flag == "--app-id") {
                options.appId = value();
            } else if (flag == "--client-id") {
                options.clientId = value();
            } else if (flag == "--secret-file") {
                options.secret = readSecretFile(value());
            } else if (flag == "--server-url") {
                options.serverUrl = value();
            } else if (flag == "--token-url") {
                options.tokenUrl = value();
            } else if (flag == "--scope") {
                options.scope = value();
            } else if (flag == "--issuer") {
                oauth.issuer = value();
                oauthFlags = true;
            } else if (flag == "--auth-method") {
                oauth.authMethod = authMethodNamed(value());
                oauthFlags = true;
            } else if (flag == "--key-file") {
                oauth.privateKeyPem = readFile(value());
                oauthFlags = true;
            } else if (flag == "--cert-file") {
                oauth.certificatePem = readFile(value());
                oauthFlags = true;
            } else if (flag == "--kid") {
                oauth.keyId = value();
                oauthFlags = true;
            } else if (flag == "--alg") {
                oauth.signingAlg = value();
                oauthFlags = true;
            } else if (flag == "--assertion-file") {
                oauth.assertionFile = value();
                oauthFlags = true;
            } else if (flag == "--resource") {
                oauth.resources.push_back(value());
                oauthFlags = true;
            } else if (flag == "--audience") {
                oauth.audience = value();
                oauthFlags = true;
            } else if (flag == "--param") {
                const std::string& parameter = value();
                const auto equals = parameter.find('=');
                if (equals == std::string::npos) throw std::invalid_argument("--param needs NAME=VALUE");
                oauth.extraParameters.emplace_back(parameter.substr(0, equals), parameter.substr(equals + 1));
                oauthFlags = true;
            } else if (flag == "--cert-dir") {
                certificateDirectory = value();
            } else if (flag == "--ca-info") {
                options.caInfo = value();
            } else if (flag == "--proxy") {
                options.proxy = value();
            } else if (flag == "--timeout") {
                options.timeout = std::chrono::milliseconds(static_cast<long long>(std::stod(value()) * 1000));
            } else if (flag == "--json") {
                json = true;
            } else if (flag == "--verbose") {
                options.log = [](mca::LogLevel, std::string_view message) { std::cerr << "mca: " << message << "\n"; };
            } else {
                throw std::invalid_argument("unknown option " + flag);
            }
        }
    } catch (const mca::Error& error) {
        std::cerr << "mca-token: " << error.what() << "\n";
        return kConfiguration;
    } catch (const std::exception& error) {
        std::cerr << "mca-token: " << error.what() << "\n" << kUsage;
        return kBadUsage;
    }
    if (options.secret.empty()) {
        if (const char* secret = std::getenv("MCA_SECRET")) options.secret = secret;
    }
    if (oauthFlags) {  // the shared flags move over to the OAuth client
        if (!options.appId.empty() || !options.serverUrl.empty()) {
            std::cerr << "mca-token: --app-id and --server-url belong to MCA, not to an OAuth client\n" << kUsage;
            return kBadUsage;
        }
        oauth.clientId = std::exchange(options.clientId, {});
        oauth.secret = std::exchange(options.secret, {});
        oauth.tokenUrl = std::exchange(options.tokenUrl, {});
        oauth.scope = std::exchange(options.scope, {});
        options.oauth = std::move(oauth);
    }

    try {
        mca::AuthClient client(options);
        std::string header;
        std::string tenant;
        if (!certificateDirectory.empty()) {
            mca::CertificateCredentials credentials =
                mca::certificateCredentialsFromDirectory(certificateDirectory, options.appId);
            if (!options.serverUrl.empty()) credentials.serverUrl = options.serverUrl;
            header = client.getAuthorizationHeader(credentials).get();
            tenant = credentials.appId;
        } else {
            header = client.getAuthorizationHeader().get();
            tenant = options.appId;
        }
        if (json) {
            const nlohmann::json claims = claimsOf(header);
            if (tenant.empty() && claims.contains("aud") && claims["aud"].is_string()) tenant = claims["aud"];
            nlohmann::json out = {{"header", header}, {"tenant", tenant}, {"expiresAt", nullptr}};
            if (claims.contains("exp") && claims["exp"].is_number())
                out["expiresAt"] = isoTime(claims["exp"].get<std::time_t>());
            std::cout << out.dump(2) << "\n";
        } else {
            std::cout << header << "\n";
        }
        return kOk;
    } catch (const mca::Error& error) {
        std::cerr << "mca-token: " << error.what();
        if (error.httpStatus() != 0) std::cerr << " (HTTP " << error.httpStatus() << ")";
        std::cerr << "\n";
        return exitCodeFor(error.errc());
    }
}
