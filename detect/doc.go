// Package detect tells, on the server side, whether a visitor's TLS
// connection was re-originated by a middlebox: every browser's TLS stack
// sends a characteristic ClientHello, so a ClientHello that does not fit the
// browser the User-Agent names was made by something in the middle
// (Durumeric et al., "The Security Impact of HTTPS Interception", NDSS 2017).
//
// The parts:
//
//   - parsing and fingerprints, in package tlshello (Parse and ClientHello
//     here are its): a ClientHello, also split over many records,
//     bounds-checked everywhere on cryptobyte (fuzzed); JA4 and JA4_r
//     (checked against FoxIO's vectors), JA3; here, mitmengine's feature
//     fingerprint (FeaturesOf);
//   - the check: Checker asks whether the hello fits the browser the
//     User-Agent names at that version (a reference per family and version
//     range: today's browsers per TLS stack from uTLS parrots and the
//     installed Chromium and Firefox, older ones from Cloudflare's mitmengine
//     browser signatures), what it shows that the browser's TLS stack never
//     sent, and, only when it does not fit, whether it is a known
//     interceptor's (mitmengine's 116, including the 2019 Kazakh box) or a
//     non-browser stack's (Go's crypto/tls, OpenSSL, Java). Reasons say what
//     was expected and what was seen; data/README.md documents the model;
//   - the net/http layer, in package detecthttp: a Listener that keeps the
//     raw first TLS records of each connection without disturbing
//     crypto/tls, and a Middleware that puts the verdict into each
//     request's context, can set a response header and call a hook; package
//     site is the example site that warns intercepted visitors (mitmguard
//     serve).
//
// data/reference.json is made by internal/genref from real handshakes
// (go generate ./detect) so it can be refreshed, in one command, when the
// packaged browsers change. Package evaluate (and mitmguard detect
// --evaluate) measures the detector on labelled captures.
package detect
