// Package winstore reads the Windows certificate stores: offline, from the
// registry hives of a mounted Windows volume (machine SOFTWARE and each
// user's NTUSER.DAT), and live through CryptoAPI on Windows itself. It also
// plans distrusting a root the way Microsoft's tooling does (add it to
// Disallowed, remove it from Root) and writes that plan as PowerShell for an
// administrator who prefers to run it by hand.
//
// Windows keeps the certificates of a registry-backed store under
// <store>\Certificates\<SHA-1 thumbprint>, each in a REG_BINARY value named
// Blob: a serialized list of properties, one of which (CERT_CERT_PROP_ID)
// is the certificate's DER. A certificate found in a Disallowed store is
// distrusted for everyone the Disallowed store applies to, whatever Root
// store also holds it.
package winstore
