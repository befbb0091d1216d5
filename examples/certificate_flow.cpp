// The certificate flow, as the Node SDK's getAuthorizationHeaderByCertificate: the client
// certificate and key come from imf_certificate/ under the working directory, the server from the
// imfServiceUrl variable, the clientId from the certificate's CN.
//
//   imfServiceUrl=https://imf-authserver.ng.bluemix.net/imf-authserver ./certificate_flow <appId>

#include <mca/auth_client.hpp>

#include <iostream>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: certificate_flow <appId>\n";
        return 2;
    }
    try {
        const mca::CertificateCredentials tenant = mca::certificateCredentialsFromDirectory(".", argv[1]);
        mca::AuthClient client;
        const std::string header = client.getAuthorizationHeader(tenant).get();
        std::cout << "got a header of " << header.size() << " bytes\n";
        return 0;
    } catch (const mca::Error& error) {
        std::cerr << error.what() << "\n";  // e.g. MISSING_PEM_ERROR, INVALID_CERTIFICATE_ERROR
        return 1;
    }
}
