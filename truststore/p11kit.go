package truststore

import (
	"bytes"
	"path/filepath"
	"strings"

	"github.com/mitmguard/mitmguard/chain"
)

// P11KitSource is a p11-kit source file in a base folder itself (not in
// anchors/ or blocklist/), such as Fedora's packaged
// /usr/share/pki/ca-trust-source/ca-bundle.trust.p11-kit, whose objects
// carry their own trust flags.
const P11KitSource Kind = "p11kit-source"

// p11kitObject is one certificate object of a p11-kit source file with the
// trust its attributes give it.
type p11kitObject struct {
	cert  *chain.Cert
	trust Trust
	label string
}

// parseP11KitObjects reads the certificate objects of a .p11-kit file:
// sections headed [p11-kit-object-v1] holding a PEM certificate (with
// "class: certificate" or no class), and "trusted: true" or
// "x-distrusted: true". Objects of other
// classes (certificate extensions) are skipped; what cannot be read is
// returned as a problem.
func parseP11KitObjects(data []byte) ([]p11kitObject, []error) {
	var out []p11kitObject
	var problems []error
	for _, sec := range bytes.Split(data, []byte("[p11-kit-object-v1]"))[1:] {
		attrs := map[string]string{}
		for _, line := range strings.Split(string(sec), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "-----") && !strings.Contains(k, " ") {
				attrs[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
		if c := attrs["class"]; c != "" && c != "certificate" {
			continue // certificate extensions and the like; a PEM block alone means a certificate
		}
		certs, errs := ParseCertFile(sec)
		problems = append(problems, errs...)
		if len(certs) != 1 {
			continue
		}
		o := p11kitObject{cert: certs[0], trust: NoTrust, label: attrs["label"]}
		switch {
		case attrs["x-distrusted"] == "true":
			o.trust = Distrusted
		case attrs["trusted"] == "true":
			o.trust = Trusted
		}
		out = append(out, o)
	}
	return out, problems
}

// readP11KitSources reads the .p11-kit files directly in the base folders.
func readP11KitSources(r rootFS) []*Store {
	var stores []*Store
	for _, base := range p11kitBases {
		for _, p := range r.glob(base + "/*.p11-kit") {
			s := &Store{Kind: P11KitSource, Path: p, Owner: "system"}
			data, err := r.readFile(p)
			if err != nil {
				s.problem(p, err)
				stores = append(stores, s)
				continue
			}
			objs, problems := parseP11KitObjects(data)
			for _, e := range problems {
				s.problem(p, e)
			}
			for _, o := range objs {
				s.Entries = append(s.Entries, Entry{Cert: o.cert, Trust: o.trust, File: p, Label: o.label})
			}
			stores = append(stores, s)
		}
	}
	return stores
}

// packagedBySystem reports a store file that the distribution ships from
// Mozilla's program: Debian's mozilla/ folder, Fedora's packaged bundle.
func packagedBySystem(kind Kind, file string) bool {
	switch kind {
	case DebianShare:
		return strings.HasPrefix(file, DebianShareDir+"/mozilla/")
	case P11KitSource:
		return strings.HasPrefix(file, "/usr/share/") && filepath.Ext(file) == ".p11-kit"
	}
	return false
}
