// Package chain owns the certificate chain a server presented: the raw DER
// certificates in the order they were sent, read from the wire or from a PEM
// file, with what a person or a report needs to see of each one.
//
// A chain is kept as DER, not only as parsed certificates, because evidence
// must survive a certificate that crypto/x509 refuses to parse. Dell's
// DSDTestProvider root has a negative serial number, which Go rejects unless
// GODEBUG=x509negativeserial=1; rather than flip that process-wide switch,
// SPKIHash walks the DER itself so such a certificate can still be matched
// against the blocklist by its key.
package chain
