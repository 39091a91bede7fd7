// Package lab reproduces an HTTPS-interception middlebox on loopback, so that
// mitmguard's detectors are tested against the real thing rather than mocks.
//
// A Lab has a small public-key infrastructure of its own: a "public" root
// (the tests pass it as an extra public root), a public intermediate that
// issues the origin servers' certificates, and a "national" root with a
// "Security Certificate" intermediate that the middlebox forges with. It runs:
//
//   - an origin: an HTTPS server that serves every configured name with one
//     certificate chained to the lab public root;
//   - a middlebox in front of the origin that reads the SNI of each
//     ClientHello and, for targeted names, acts as the Kazakh box of 2019 did
//     (Intercept: Subject and SAN copied from the origin's real certificate,
//     a per-host RSA key with exponent 3, validity moved 6 hours back, the serial kept but
//     for its low 33 bits, other extensions dropped, chained leaf <-
//     "Security Certificate" <- national root with the root not sent, and the
//     traffic relayed), or resets, stalls or closes the connection; other
//     names pass through untouched, byte for byte;
//   - an origin that omits its intermediate, and the HTTP server its AIA URL
//     points to, to test that a misconfigured server is not called
//     interception.
//
// Everything listens on 127.0.0.1 and dials only its own listeners. The
// interception code exists here, in an internal package, only to test the
// defence.
package lab
