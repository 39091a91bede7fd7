// Package verdict classifies a presented certificate chain for a server name
// into the outcome vocabulary (package outcome), with the evidence: the whole
// presented chain, the blocklist entry it matched, the chain that was built,
// and a sentence a person can act on.
//
// Evidence is weighed in the order DESIGN.md gives, strongest first:
//
//  1. a certificate in the chain, or the root that signed one of them even
//     when it was not sent, has a blocklisted key: mitm.known:<id>;
//  2. the chain verifies to a public root (the Mozilla set plus any roots the
//     caller adds): ok, or tls.invalid_hostname / tls.expired when only the
//     name or the time is wrong;
//  3. the certificate is valid for a public domain name but does not chain to
//     a public root: mitm.suspected, naming the root it does chain to when
//     the device trusts one (a locally installed interception root), or the
//     issuer it claims. A server that merely forgot its intermediate is
//     given its chance: when the classifier is online the missing issuer is
//     fetched from the leaf's AIA URL and the chain tried again. When that
//     download fails (or the classifier is offline) the verdict stays
//     mitm.suspected, with the reason: the on-path forger can block the
//     download, so its failure must not clear suspicion;
//  4. anything else is broken without a sign of interception:
//     tls.unknown_authority, tls.invalid_hostname or tls.invalid.
//
// Comparison with a control (another SNI, another vantage point) is the
// measurement engine's work; this package judges one chain on its own.
package verdict
