// Package blocklist owns mitmguard's curated list of interception roots: the
// entries with their provenance, the versioned JSON file format they are
// written in (see FORMAT.md), and matching a presented chain against them.
//
// Entries are keyed by the SHA-256 of their SubjectPublicKeyInfo, as
// Chromium's block list is, because an interception authority re-issues the
// same name with new keys and validity periods (Kazakhstan's ISCA root exists
// under at least eight keys) while a key, once known, stays known.
//
// A middlebox does not always send the root it chains to: the 2019 Kazakh box
// sent only the forged leaf and its "Security Certificate" intermediate. So
// an entry that carries its certificate also completes chains: a presented
// certificate whose signature verifies under an entry's key matches that
// entry even though the entry itself was never sent.
//
// The list that ships inside the binary is Embedded; users add their own
// entries with Load (JSON or plain PEM) and Merge.
package blocklist

//go:generate go run ./internal/gen
