// Package detect tells, on the server side, whether a visitor's TLS
// connection was re-originated by a middlebox: every browser's TLS stack
// sends a characteristic ClientHello, so a ClientHello that does not fit the
// browser the User-Agent names was made by something in the middle
// (Durumeric et al., "The Security Impact of HTTPS Interception", NDSS 2017).
//
// The parts:
//
//   - capture: Listener keeps the raw first TLS records of each connection
//     without disturbing crypto/tls; ConnContext and FromContext hand them
//     to HTTP handlers;
//   - parsing: Parse reads a ClientHello, also split over many records,
//     bounds-checked everywhere (fuzzed);
//   - fingerprints: JA4 and JA4_r (checked against FoxIO's vectors), JA3,
//     and mitmengine's feature fingerprint (Features);
//   - the check: Checker compares the ClientHello with the reference data in
//     data/: today's browsers per TLS stack (Chromium/BoringSSL permutes its
//     extensions and sends GREASE; Firefox/NSS and Safari keep a fixed order),
//     the stacks interceptors are built on (Go's crypto/tls, OpenSSL, Java), and
//     Cloudflare's mitmengine records (2016-2020 browsers, 116 interceptors
//     including the 2019 Kazakh box, and proxy headers);
//   - Middleware puts the verdict into each request's context, can set a
//     response header and call a hook; Handler is an example site that warns
//     intercepted visitors (mitmguard serve).
//
// data/reference.json is made by internal/genref from real handshakes
// (go generate ./detect) so it can be refreshed when browsers change.
package detect
