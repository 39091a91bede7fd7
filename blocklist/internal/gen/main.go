// Command gen writes blocklist.json, the list embedded in mitmguard, from the
// certificates in testdata/chromium (copied from Chromium's
// net/data/ssl/blocklist, see its README.md) and the provenance below.
// Run it with `go generate ./blocklist` after changing either.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/chain"
)

const (
	chromiumList = "https://chromium.googlesource.com/chromium/src/+/main/net/cert/cert_verify_proc_blocklist.inc"
	imc2020      = "Raman, Evdokimov, Wustrow, Halderman, Ensafi: Investigating Large Scale HTTPS Interception in Kazakhstan, IMC 2020"
	moz2019      = "https://bugzilla.mozilla.org/show_bug.cgi?id=1567114"
	moz2020      = "https://bugzilla.mozilla.org/show_bug.cgi?id=1680927"
	moz2024      = "https://bugzilla.mozilla.org/show_bug.cgi?id=1879046"
	ooni2024     = "OONI, Kazakhstan 2024 report: 14 domains intercepted with the ISCA root, 2021-2024"
)

var (
	all4     = []string{"chrome", "firefox", "safari", "edge"}
	chromium = []string{"chrome", "edge"}
	b        = []string{"blocked"}
	ki       = []string{"known-interception"}
	bki      = []string{"blocked", "known-interception"}
)

// meta is keyed by the SPKI SHA-256 prefix that names each PEM file.
var meta = map[string]blocklist.Entry{
	"b5ba8dd7": {ID: "kz-2019-qaznet", Name: "Qaznet Trust Network", Country: "KZ", Kind: blocklist.KindGovernment, FirstSeen: "2019-07-17", BlockedBy: all4, Chromium: b,
		References: []string{moz2019, imc2020, chromiumList},
		Notes:      "Kazakhtelecom middlebox, July-August 2019: forged leaf <- 'C=KZ, CN=Security Certificate' <- this root (root not sent) for 37 targeted domains; blocked by all four browser makers on 2019-08-21."},
	"8e12d0cb": {ID: "kz-2020-isca-ca", Name: "Information Security Certification Authority CA", Country: "KZ", Kind: blocklist.KindGovernment, FirstSeen: "2020-12-06", BlockedBy: all4, Chromium: bki,
		References: []string{moz2020, chromiumList},
		Notes:      "'Cybersecurity drill' in Nur-Sultan from 2020-12-06; blocked by browsers around 2020-12-18."},
	"b13fa2e6": {ID: "kz-2020-isca-b13fa2e6", Name: "Information Security Certification Authority (2020-2040, key b13fa2e6)", Country: "KZ", Kind: blocklist.KindGovernment, FirstSeen: "2020-12", BlockedBy: chromium, Chromium: bki,
		References: []string{moz2020, chromiumList}, Notes: "ISCA family: the same name re-issued under other keys."},
	"e47c5cd2": {ID: "kz-2020-isca-e47c5cd2", Name: "Information Security Certification Authority (2020-2040, key e47c5cd2)", Country: "KZ", Kind: blocklist.KindGovernment, FirstSeen: "2020-12", BlockedBy: chromium, Chromium: bki,
		References: []string{moz2020, chromiumList}, Notes: "ISCA family: the same name re-issued under other keys."},
	"39736588": {ID: "kz-2020-isca-39736588", Name: "Information Security Certification Authority (2020-2040, key 39736588)", Country: "KZ", Kind: blocklist.KindGovernment, FirstSeen: "2020-12", BlockedBy: chromium, Chromium: bki,
		References: []string{moz2020, chromiumList}, Notes: "ISCA family: the same name re-issued under other keys."},
	"ea12705d": {ID: "kz-2020-isca-ea12705d", Name: "Information Security Certification Authority (2020-2040, key ea12705d)", Country: "KZ", Kind: blocklist.KindGovernment, FirstSeen: "2020-12", BlockedBy: chromium, Chromium: bki,
		References: []string{moz2020, chromiumList}, Notes: "ISCA family: the same name re-issued under other keys."},
	"02a95f43": {ID: "kz-2020-isca-2050", Name: "Information Security Certification Authority (2020-2050, key 02a95f43)", Country: "KZ", Kind: blocklist.KindGovernment, FirstSeen: "2020-12", BlockedBy: chromium, Chromium: bki,
		References: []string{"https://crt.sh/?id=11106964945", chromiumList}, Notes: "ISCA 30-year root, logged in CT."},
	"c56217b7": {ID: "kz-2021-isca", Name: "Information Security Certification Authority (Nur-Sultan, 2021-2031)", Country: "KZ", Kind: blocklist.KindGovernment, FirstSeen: "2021-04-28", BlockedBy: chromium, Chromium: bki,
		References: []string{ooni2024, chromiumList}, Notes: "ISCA family, issued 2021."},
	"8928c593": {ID: "kz-2024-isca", Name: "Information Security Certification Authority (2020-2050, key 8928c593)", Country: "KZ", Kind: blocklist.KindGovernment, FirstSeen: "2024-02-07", BlockedBy: []string{"chrome", "firefox", "edge"}, Chromium: bki,
		References: []string{moz2024, ooni2024, chromiumList}, Notes: "Interception reported 2024-02-07; forged leaves valid 2024-01-04..2024-04-03."},
	"3472e4f1": {ID: "kz-2024-isca-gov", Name: "Information Security Certification Authority (2020-2050, served by isca.gov.kz)", Country: "KZ", Kind: blocklist.KindGovernment, FirstSeen: "2024-09", BlockedBy: chromium, Chromium: ki,
		References: []string{chromiumList}, Notes: "The copy served by isca.gov.kz in September 2024."},
	"4bb8f35b": {ID: "superfish", Name: "Superfish, Inc.", Kind: blocklist.KindAdware, FirstSeen: "2015-02", BlockedBy: chromium, Chromium: b,
		References: []string{chromiumList}, Notes: "Lenovo preinstalled adware that intercepted HTTPS; the root's private key has been public since 2015."},
	"cdee9f33": {ID: "dell-edellroot", Name: "eDellRoot", Kind: blocklist.KindOEMKeyLeak, FirstSeen: "2015-11", BlockedBy: chromium, Chromium: b,
		References: []string{chromiumList}, Notes: "Dell preinstalled root with an extractable private key: anyone could forge certificates it trusts."},
	"130ad4e0": {ID: "dell-dsdtestprovider", Name: "DSDTestProvider", Kind: blocklist.KindOEMKeyLeak, FirstSeen: "2015-11", BlockedBy: chromium, Chromium: b,
		References: []string{chromiumList}, Notes: "Dell root with an extractable private key. Its serial is negative, which Go's parser refuses; mitmguard matches it by key."},
	"a4e9af01": {ID: "test-badssl-known-interception", Name: "known-interception.badssl.com (test leaf)", Kind: blocklist.KindTestFixture, FirstSeen: "2019-12-16", BlockedBy: chromium, Chromium: ki, TestOnly: true,
		References: []string{chromiumList}, Notes: "Browser test fixture, a leaf that expired in 2021; it proves the known-interception path, not a real threat."},
	"b0fcce78": {ID: "test-badssl-blocked-interception", Name: "blocked-interception.badssl.com (test leaf)", Kind: blocklist.KindTestFixture, FirstSeen: "2019-12-16", BlockedBy: chromium, Chromium: bki, TestOnly: true,
		References: []string{chromiumList}, Notes: "Browser test fixture, a leaf that expired in 2021; it proves the blocked-interception path, not a real threat."},
}

// order is the file order: Kazakhstan by date, then the others.
var order = []string{"b5ba8dd7", "8e12d0cb", "b13fa2e6", "e47c5cd2", "39736588", "ea12705d", "02a95f43", "c56217b7", "8928c593", "3472e4f1", "4bb8f35b", "cdee9f33", "130ad4e0", "a4e9af01", "b0fcce78"}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	files, err := filepath.Glob("testdata/chromium/*.pem")
	if err != nil {
		return err
	}
	if len(files) != len(order) {
		return fmt.Errorf("%d PEM files, %d entries described", len(files), len(order))
	}
	byPrefix := map[string]string{}
	for _, f := range files {
		byPrefix[filepath.Base(f)[:8]] = f
	}
	var entries []*blocklist.Entry
	for _, p := range order {
		data, err := os.ReadFile(byPrefix[p])
		if err != nil {
			return fmt.Errorf("entry %s: %w", p, err)
		}
		c, err := chain.ParsePEM(data)
		if err != nil {
			return fmt.Errorf("%s: %w", byPrefix[p], err)
		}
		e := meta[p]
		e.Certificate = c[0].PEM()
		e.SPKISHA256 = c[0].SPKI.String()
		e.CertSHA256 = c[0].SHA256.String()
		entries = append(entries, &e)
	}
	l, err := blocklist.New(entries, 1, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	out, err := l.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile("blocklist.json", out, 0o644)
}
