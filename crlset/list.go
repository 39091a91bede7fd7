package crlset

import (
	"encoding/base64"
	"slices"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
)

// FromList is a blocklist as a CRLSet (header only, no serials), the
// format's one writer being Marshal: entries on both of Chromium's lists
// (or on none, as a user's are) go to BlockedInterceptionSPKIs, the others
// to the list they are on. The list's version is the sequence number.
func FromList(l *blocklist.List) *CRLSet {
	h := Header{
		ContentType: "CRLSet", Sequence: int64(l.Version),
		NotAfter: time.Now().Add(30 * 24 * time.Hour).Unix(),
	}
	for _, e := range l.Entries() {
		spki := e.SPKI()
		s := base64.StdEncoding.EncodeToString(spki[:])
		b, k := slices.Contains(e.Chromium, "blocked"), slices.Contains(e.Chromium, "known-interception")
		switch {
		case b && !k:
			h.BlockedSPKIs = append(h.BlockedSPKIs, s)
		case k && !b:
			h.KnownInterceptionSPKIs = append(h.KnownInterceptionSPKIs, s)
		default:
			h.BlockedInterceptionSPKIs = append(h.BlockedInterceptionSPKIs, s)
		}
	}
	return &CRLSet{Header: h}
}
