// App ID, or any OAuth 2.0 client-credentials server: set tokenUrl (App ID: the binding's
// oauthServerUrl + "/token") and, if the service wants one, a scope.
//
//   APPID_OAUTH_SERVER_URL=https://us-south.appid.cloud.ibm.com/oauth/v4/<tenantId> \
//   APPID_CLIENT_ID=... APPID_SECRET=... ./app_id

#include <mca/auth_client.hpp>

#include <cstdlib>
#include <iostream>

int main() {
    const char* oauthServerUrl = std::getenv("APPID_OAUTH_SERVER_URL");
    const char* clientId = std::getenv("APPID_CLIENT_ID");
    const char* secret = std::getenv("APPID_SECRET");
    if (!oauthServerUrl || !clientId || !secret) {
        std::cerr << "set APPID_OAUTH_SERVER_URL, APPID_CLIENT_ID and APPID_SECRET\n";
        return 2;
    }
    mca::Credentials tenant;
    tenant.clientId = clientId;
    tenant.secret = secret;
    tenant.tokenUrl = std::string(oauthServerUrl) + "/token";
    tenant.scope = "read";

    mca::AuthClient client;
    try {
        std::cout << "got a header of " << client.getAuthorizationHeader(tenant).get().size() << " bytes\n";
        return 0;
    } catch (const mca::Error& error) {
        std::cerr << error.what() << "\n";  // an OAuth refusal shows its error and error_description
        return 1;
    }
}
