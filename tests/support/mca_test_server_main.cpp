// mca-test-server: runs McaTestServer on 127.0.0.1 until SIGINT/SIGTERM.
#include "mca_test_server.hpp"

#include <pthread.h>
#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: mca-test-server [--port N] [--app ID --client ID --secret S]... [--expires-in N]\n"
    "                       [--tls-cert FILE --tls-key FILE] [--port-file FILE]\n"
    "Without --app/--client/--secret, registers demo-app / demo-client / demo-secret.\n";

struct Client {
    std::string appId, clientId, secret;
};

struct CommandLine {
    mca::test::ServerOptions options;
    std::vector<Client> clients;
    std::string portFile;
};

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
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            std::cout << kUsage;
            std::exit(0);
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
        } else if (flag == "--port-file") {
            commandLine.portFile = value;
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
        for (const Client& client : commandLine.clients) server.addClient(client.appId, client.clientId, client.secret);
        if (!commandLine.portFile.empty()) writePortFile(commandLine.portFile, server.port());
        std::cout << "listening on " << server.baseUrl() << std::endl;

        int signal = 0;
        sigwait(&stopSignals, &signal);
    } catch (const std::exception& error) {
        std::cerr << "mca-test-server: " << error.what() << '\n';
        return 1;
    }
    return 0;
}
