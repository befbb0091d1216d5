'use strict';
// bms-mca-oauth-sdk requires x509 at load time but only its certificate flow parses certificates.
exports.parseCert = function parseCert() {
  throw new Error('x509 stub: certificate parsing is not available in this benchmark');
};
