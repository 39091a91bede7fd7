package truststore

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/roots"
)

// Status is the audit's judgement of one trusted root.
type Status string

// The statuses.
const (
	// KnownInterception: the root's key is on the blocklist.
	KnownInterception Status = "known-interception"
	// NotPublic: trusted as a root but not in the Mozilla set: a corporate
	// proxy, an antivirus, a private CA, or an interception root not yet
	// listed. Reported, not failed: such roots are often legitimate.
	NotPublic Status = "not-public"
	// Public: a root of the Mozilla program, as mitmguard ships it or as the
	// distribution packages it (/usr/share/ca-certificates/mozilla): a
	// distribution's older snapshot still holds roots that Mozilla has since
	// retired, and those are not what an audit is looking for.
	Public Status = "public"
)

// Finding is one certificate of one store, judged.
type Finding struct {
	Status     Status `json:"status"`
	Trust      Trust  `json:"trust"`
	Store      Kind   `json:"store"`
	StorePath  string `json:"store_path"`
	Owner      string `json:"owner"`
	File       string `json:"file"`
	Label      string `json:"label,omitempty"`
	Subject    string `json:"subject"`
	SPKISHA256 string `json:"spki_sha256"`
	SHA256     string `json:"sha256"`
	EntryID    string `json:"entry_id,omitempty"`
	EntryName  string `json:"entry_name,omitempty"`
	// Advice says why the root matters; Action what to do where it is.
	Advice string `json:"advice,omitempty"`
	Action string `json:"action,omitempty"`

	entry *blocklist.Entry
	cert  Entry
}

// Certificate is the certificate found (a distrust writes it to a p11-kit
// blocklist).
func (f Finding) Certificate() *chain.Cert { return f.cert.Cert }

// StoreSummary describes one store found.
type StoreSummary struct {
	Kind         Kind     `json:"kind"`
	Path         string   `json:"path"`
	Owner        string   `json:"owner"`
	Certificates int      `json:"certificates"`
	Trusted      int      `json:"trusted"`
	Problems     []string `json:"problems,omitempty"`
}

// Report is the result of an audit.
type Report struct {
	Root     string         `json:"root"`
	Stores   []StoreSummary `json:"stores"`
	Findings []Finding      `json:"findings"`
	Elapsed  time.Duration  `json:"-"`
	stores   []*Store
}

// Audit judges every certificate of the stores: each trusted root as
// known-interception, not-public or public, and each distrusted one that is
// on the blocklist (so the report shows it is already handled). A nil list
// means the embedded one.
func Audit(stores []*Store, list *blocklist.List) *Report {
	if list == nil {
		list = blocklist.Embedded()
	}
	rep := &Report{Findings: []Finding{}, stores: stores}
	packaged := packagedPublic(stores)
	for _, s := range stores {
		sum := StoreSummary{Kind: s.Kind, Path: s.Path, Owner: s.Owner, Certificates: len(s.Entries)}
		for _, p := range s.Problems {
			sum.Problems = append(sum.Problems, p.Error())
		}
		for _, e := range s.Entries {
			if e.Trust == Trusted {
				sum.Trusted++
			}
			entry := list.Lookup(e.Cert.SPKI)
			var status Status
			switch {
			case entry != nil:
				status = KnownInterception
			case e.Trust != Trusted:
				continue // untrusted and not blocklisted: nothing to say
			case !canIssue(e.Cert):
				continue // a server's own certificate (ssl-cert's snakeoil), not a root
			case roots.IsMozilla(e.Cert.SPKI), packaged[e.Cert.SPKI]:
				status = Public
			default:
				status = NotPublic
			}
			f := Finding{
				Status: status, Trust: e.Trust, Store: s.Kind, StorePath: s.Path, Owner: s.Owner,
				File: e.File, Label: e.Label, Subject: e.Cert.Subject(),
				SPKISHA256: e.Cert.SPKI.String(), SHA256: e.Cert.SHA256.String(),
				entry: entry, cert: e,
			}
			if entry != nil {
				f.EntryID, f.EntryName = entry.ID, entry.Name
			}
			f.Advice, f.Action = advice(f)
			rep.Findings = append(rep.Findings, f)
		}
		rep.Stores = append(rep.Stores, sum)
	}
	return rep
}

// canIssue reports whether a trusted certificate can issue others, as
// OpenSSL and browsers decide: a v3 certificate must say CA in its basic
// constraints and, when it has a key usage, allow certificate signing. A v1
// certificate has no extensions and is taken as a CA, as OpenSSL does for a
// self-signed one (an interception root could be v1). One that crypto/x509
// cannot parse is kept, to be looked at.
func canIssue(c *chain.Cert) bool {
	x := c.X509
	if x == nil || x.Version < 3 {
		return true
	}
	if !x.BasicConstraintsValid || !x.IsCA {
		return false
	}
	return x.KeyUsage == 0 || x.KeyUsage&x509.KeyUsageCertSign != 0
}

// Flagged returns the findings that are not public roots.
func (r *Report) Flagged() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Status != Public {
			out = append(out, f)
		}
	}
	return out
}

// TrustsKnownInterception reports whether any store trusts a blocklisted root.
func (r *Report) TrustsKnownInterception() bool {
	for _, f := range r.Findings {
		if f.Status == KnownInterception && f.Trust == Trusted {
			return true
		}
	}
	return false
}

// packagedPublic returns the keys of the roots the distribution packages
// from Mozilla's program (and trusts).
func packagedPublic(stores []*Store) map[chain.Hash]bool {
	out := map[chain.Hash]bool{}
	for _, s := range stores {
		for _, e := range s.Entries {
			if e.Trust == Trusted && packagedBySystem(s.Kind, e.File) {
				out[e.Cert.SPKI] = true
			}
		}
	}
	return out
}

// advice says why a finding matters and what to do about it where it is,
// by hand; `mitmguard distrust` does the same.
func advice(f Finding) (why, action string) {
	switch {
	case f.Status == Public:
		return "", ""
	case f.Trust != Trusted:
		return "already not trusted here", ""
	case f.Status == KnownInterception:
		why = "a root known to be used for interception: remove its trust"
	default:
		why = "a root outside the public root program: keep it only if you know who installed it and why (a company proxy, an antivirus)"
	}
	switch f.Store {
	case DebianLocal:
		action = fmt.Sprintf("remove %s and run update-ca-certificates", f.File)
	case DebianShare:
		action = fmt.Sprintf("deselect it with a line '!%s' in %s and run update-ca-certificates", relShare(f.File), DebianConf)
	case DebianBundle, DebianHashedDir:
		action = "generated by update-ca-certificates: goes away when its source is removed and the folder rebuilt"
	case P11KitAnchors, P11KitSource:
		action = fmt.Sprintf("copy %s into the blocklist folder beside %s and run update-ca-trust (or trust extract-compat)", f.File, f.StorePath)
	case NSS:
		action = fmt.Sprintf("certutil -M -d sql:%s -n %q -t p,p,p (with the browser closed)", f.StorePath, f.Label)
	case AndroidAdded:
		action = "on the phone: Settings > Security > Encryption & credentials > Trusted credentials > User: tap it and Remove (or delete " + f.File + " from the image)"
	case AndroidSystem:
		action = "a system root of the firmware: on the phone, Settings > Security > Encryption & credentials > Trusted credentials > System: tap it and Turn off"
	case Java:
		action = fmt.Sprintf("keytool -delete -alias %q -keystore %s -storepass %s", f.Label, f.File, DefaultJavaPassword)
	case WindowsRoot, WindowsAuthRoot, WindowsCA:
		action = windowsAction(f)
	default:
		action = fmt.Sprintf("remove it from %s", f.File)
	}
	return why, action
}

// relShare names a packaged certificate as ca-certificates.conf does.
func relShare(file string) string { return strings.TrimPrefix(file, DebianShareDir+"/") }
