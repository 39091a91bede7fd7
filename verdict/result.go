package verdict

import (
	"crypto/x509"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/outcome"
)

// Result is a verdict with its evidence.
type Result struct {
	Outcome outcome.Outcome `json:"outcome"`
	// Entry is the blocklist entry the chain runs through (mitm.known).
	Entry *EntryRef `json:"entry,omitempty"`
	// Presented is the chain as the server sent it, whatever the outcome.
	Presented chain.Chain `json:"-"`
	// Built is the chain that was verified or completed, leaf first, when
	// one could be built (to a public root, a local root, or a blocked one).
	Built []*x509.Certificate `json:"-"`
	// Issuer names the root or issuer the chain ends at, the evidence for
	// mitm.suspected ("C=KZ, CN=Security Certificate").
	Issuer string `json:"issuer,omitempty"`
	// TrustedLocally is true when the chain verifies to a root this device
	// trusts but the public root program does not.
	TrustedLocally bool `json:"trusted_locally,omitempty"`
	// MatchedName is the name of the certificate that made an ok chain
	// valid for the server name (the SAN entry, maybe a wildcard).
	MatchedName string `json:"matched_name,omitempty"`
	// FetchedIssuers counts intermediates fetched by AIA to complete the chain.
	FetchedIssuers int `json:"fetched_issuers,omitempty"`
	// Message is one sentence for a person: what happened and why.
	Message string `json:"message"`
	// Err is the verification error behind a non-ok outcome, if any.
	Err error `json:"-"`
}

// EntryRef is what a verdict says about the blocklist entry it matched.
type EntryRef struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Country    string         `json:"country,omitempty"`
	Kind       blocklist.Kind `json:"kind"`
	FirstSeen  string         `json:"first_seen,omitempty"`
	BlockedBy  []string       `json:"blocked_by,omitempty"`
	References []string       `json:"references,omitempty"`
	SPKISHA256 string         `json:"spki_sha256"`
	// Completed is true when the blocked root was not sent and was found
	// as the signer of a certificate that was.
	Completed bool `json:"completed,omitempty"`
}

func refOf(m *blocklist.Match) *EntryRef {
	e := m.Entry
	return &EntryRef{
		ID: e.ID, Name: e.Name, Country: e.Country, Kind: e.Kind, FirstSeen: e.FirstSeen,
		BlockedBy: e.BlockedBy, References: e.References, SPKISHA256: e.SPKISHA256,
		Completed: m.Completed,
	}
}

// BuiltInfos describes the built chain.
func (r *Result) BuiltInfos() []chain.Info {
	out := make([]chain.Info, len(r.Built))
	for i, c := range r.Built {
		out[i] = chain.FromX509(c).Info()
	}
	return out
}
