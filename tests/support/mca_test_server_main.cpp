// mca-test-server: runs McaTestServer on 127.0.0.1 until SIGINT/SIGTERM.
#include "mca_test_server.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: mca-test-server [--port N] [--app ID --client ID --secret S]... [--expires-in N]\n"
    "                       [--tls-cert FILE --tls-key FILE] [--port-file FILE]\n"
    "                       [--realm R [--oauth-client ID --oauth-method METHOD\n"
    "                                   [--oauth-secret S | --oauth-key-file PEM | --oauth-cert-file PEM]]...]...\n"
    "                       [--print-issuers] [--revoke-first-tokens N]\n"
    "Without --app/--client/--secret, registers demo-app / demo-client / demo-secret.\n"
    "--realm names the realm of the --oauth-client options after it; each --oauth-client is a client\n"
    "of POST /realms/R/protocol/openid-connect/token, and the --oauth-* options after it describe it.\n"
    "METHOD: client_secret_basic or client_secret_post (with --oauth-secret), private_key_jwt (with\n"
    "--oauth-key-file: a public key or certificate PEM), tls_client_auth (with --oauth-cert-file: the\n"
    "client certificate PEM; the server must run TLS).\n"
    "--print-issuers also prints 'issuer <URL>' for each realm, after the 'listening on' line.\n"
    "--revoke-first-tokens N: the protected resource (GET /resource, Bearer tokens this server signed)\n"
    "refuses the first N tokens issued with 401, as a service refuses revoked tokens.\n";

struct Client {
    std::string appId, clientId, secret;
};

struct RealmClient {
    std::string realm, methodName, secret, keyFile, certFile;
    mca::test::OAuth2Client client;
};

struct CommandLine {
    mca::test::ServerOptions options;
    std::vector<Client> clients;
    std::vector<RealmClient> realmClients;
    std::vector<std::string> realms;  // in order of appearance, for --print-issuers
    std::string portFile;
    bool printIssuers = false;
    std::size_t revokeFirstTokens = 0;
};

std::string readFile(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (!file) throw std::invalid_argument("cannot read " + path);
    return text;
}

// Checks one --oauth-client's options and reads its PEM file.
void completeRealmClient(RealmClient& entry) {
    using mca::test::ClientAuth;
    const std::string& id = entry.client.clientId;
    const auto need = [&](bool present, const char* option) {
        if (!present)
            throw std::invalid_argument("--oauth-client " + id + " (" + entry.methodName + ") needs " + option);
    };
    const auto refuse = [&](bool present, const char* option) {
        if (present)
            throw std::invalid_argument("--oauth-client " + id + " (" + entry.methodName + ") takes no " + option);
    };
    if (entry.methodName == "client_secret_basic" || entry.methodName == "client_secret_post") {
        entry.client.method =
            entry.methodName == "client_secret_basic" ? ClientAuth::SecretBasic : ClientAuth::SecretPost;
        need(!entry.secret.empty(), "--oauth-secret");
        refuse(!entry.keyFile.empty() || !entry.certFile.empty(), "--oauth-key-file or --oauth-cert-file");
        entry.client.secret = entry.secret;
    } else if (entry.methodName == "private_key_jwt") {
        entry.client.method = ClientAuth::PrivateKeyJwt;
        need(!entry.keyFile.empty(), "--oauth-key-file");
        refuse(!entry.secret.empty() || !entry.certFile.empty(), "--oauth-secret or --oauth-cert-file");
        entry.client.publicKeyPem = readFile(entry.keyFile);
    } else if (entry.methodName == "tls_client_auth") {
        entry.client.method = ClientAuth::TlsClientAuth;
        need(!entry.certFile.empty(), "--oauth-cert-file");
        refuse(!entry.secret.empty() || !entry.keyFile.empty(), "--oauth-secret or --oauth-key-file");
        entry.client.certificatePem = readFile(entry.certFile);
    } else {
        throw std::invalid_argument("--oauth-client " + id +
                                    ": --oauth-method must be client_secret_basic, "
                                    "client_secret_post, private_key_jwt or tls_client_auth");
    }
}

long long parseInteger(const std::string& flag, const std::string& text, long long min, long long max) {
    std::size_t used = 0;
    long long value = 0;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size() || value < min || value > max) {
        throw std::invalid_argument(flag + " expects an integer in [" + std::to_string(min) + ", " +
                                    std::to_string(max) + "], got '" + text + "'");
    }
    return value;
}

CommandLine parseCommandLine(int argc, char** argv) {
    CommandLine commandLine;
    std::vector<std::string> appIds, clientIds, secrets;
    std::string realm;
    // The --oauth-* options after --oauth-client describe that client.
    const auto currentRealmClient = [&](const std::string& flag) -> RealmClient& {
        if (commandLine.realmClients.empty()) throw std::invalid_argument(flag + " before any --oauth-client");
        return commandLine.realmClients.back();
    };
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            std::cout << kUsage;
            std::exit(0);
        }
        if (flag == "--print-issuers") {
            commandLine.printIssuers = true;
            continue;
        }
        if (i + 1 == argc) throw std::invalid_argument(flag + " needs a value");
        const std::string value = argv[++i];
        if (flag == "--port") {
            commandLine.options.port = static_cast<std::uint16_t>(parseInteger(flag, value, 0, 65535));
        } else if (flag == "--app") {
            appIds.push_back(value);
        } else if (flag == "--client") {
            clientIds.push_back(value);
        } else if (flag == "--secret") {
            secrets.push_back(value);
        } else if (flag == "--expires-in") {
            commandLine.options.expiresIn =
                parseInteger(flag, value, std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max());
        } else if (flag == "--tls-cert") {
            commandLine.options.tlsCertFile = value;
        } else if (flag == "--tls-key") {
            commandLine.options.tlsKeyFile = value;
        } else if (flag == "--revoke-first-tokens") {
            commandLine.revokeFirstTokens = static_cast<std::size_t>(parseInteger(flag, value, 0, 1000000));
        } else if (flag == "--port-file") {
            commandLine.portFile = value;
        } else if (flag == "--realm") {
            realm = value;
            if (std::find(commandLine.realms.begin(), commandLine.realms.end(), value) == commandLine.realms.end()) {
                commandLine.realms.push_back(value);
            }
        } else if (flag == "--oauth-client") {
            if (realm.empty()) throw std::invalid_argument("--oauth-client " + value + " before any --realm");
            RealmClient entry;
            entry.realm = realm;
            entry.client.clientId = value;
            commandLine.realmClients.push_back(std::move(entry));
        } else if (flag == "--oauth-method") {
            currentRealmClient(flag).methodName = value;
        } else if (flag == "--oauth-secret") {
            currentRealmClient(flag).secret = value;
        } else if (flag == "--oauth-key-file") {
            currentRealmClient(flag).keyFile = value;
        } else if (flag == "--oauth-cert-file") {
            currentRealmClient(flag).certFile = value;
        } else {
            throw std::invalid_argument("unknown option " + flag);
        }
    }
    if (appIds.size() != clientIds.size() || appIds.size() != secrets.size()) {
        throw std::invalid_argument("--app, --client and --secret must be given the same number of times");
    }
    for (std::size_t i = 0; i < appIds.size(); ++i)
        commandLine.clients.push_back({appIds[i], clientIds[i], secrets[i]});
    if (commandLine.clients.empty()) commandLine.clients.push_back({"demo-app", "demo-client", "demo-secret"});
    for (RealmClient& entry : commandLine.realmClients) completeRealmClient(entry);
    return commandLine;
}

// Written to a temporary name and renamed, so a watcher never reads a half-written file.
void writePortFile(const std::string& path, std::uint16_t port) {
    const std::string temporary = path + ".tmp";
    {
        std::ofstream file(temporary, std::ios::trunc);
        file << port << '\n';
        if (!file.flush()) throw std::runtime_error("cannot write " + temporary);
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename to " + path);
}

}  // namespace

int main(int argc, char** argv) {
    CommandLine commandLine;
    try {
        commandLine = parseCommandLine(argc, argv);
    } catch (const std::exception& error) {
        std::cerr << "mca-test-server: " << error.what() << '\n' << kUsage;
        return 2;
    }

    // Blocked before the server starts its threads (they inherit the mask), so
    // the signals reach only sigwait below.
    sigset_t stopSignals;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGINT);
    sigaddset(&stopSignals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);

    try {
        mca::test::McaTestServer server(commandLine.options);
        server.revokeNextTokens(commandLine.revokeFirstTokens);
        for (const Client& client : commandLine.clients) server.addClient(client.appId, client.clientId, client.secret);
        for (const RealmClient& entry : commandLine.realmClients) server.addOAuth2Client(entry.realm, entry.client);
        // A realm named without clients still serves its discovery documents (nullopt: the correct ones).
        for (const std::string& realm : commandLine.realms) {
            server.setDiscoveryReply(realm, mca::test::DiscoveryDocument::OAuthAuthorizationServer, std::nullopt);
        }
        if (!commandLine.portFile.empty()) writePortFile(commandLine.portFile, server.port());
        std::cout << "listening on " << server.baseUrl() << std::endl;
        if (commandLine.printIssuers) {
            for (const std::string& realm : commandLine.realms)
                std::cout << "issuer " << server.issuer(realm) << std::endl;
        }

        int signal = 0;
        sigwait(&stopSignals, &signal);
    } catch (const std::exception& error) {
        std::cerr << "mca-test-server: " << error.what() << '\n';
        return 1;
    }
    return 0;
}
