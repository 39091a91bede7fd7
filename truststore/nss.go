package truststore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the pure-Go "sqlite" driver

	"github.com/mitmguard/mitmguard/chain"
)

// PKCS#11 and NSS attribute types, as cert9.db names its columns ("a" + hex).
const (
	ckaClass          = "a0"
	ckaLabel          = "a3"
	ckaValue          = "a11"
	ckaIssuer         = "a81"
	ckaSerial         = "a82"
	ckaTrustServerAut = "ace536358" // CKA_NSS_TRUST_SERVER_AUTH
	ckoCertificate    = 1
	ckoNSSTrust       = 0xce534353
	cktTrustedDeleg   = 0xce534352 // a trusted CA ("C" in certutil)
	cktNotTrusted     = 0xce53435a // explicitly distrusted ("p")
)

// nssLocations are where NSS databases live, relative to a home folder.
var nssLocations = []struct{ glob, owner string }{
	{"/.pki/nssdb", "Chrome/Chromium"},
	{"/.mozilla/firefox/*", "Firefox profile"},
	{"/snap/firefox/common/.mozilla/firefox/*", "Firefox (snap) profile"},
	{"/.var/app/org.mozilla.firefox/.mozilla/firefox/*", "Firefox (flatpak) profile"},
	{"/snap/chromium/current/.pki/nssdb", "Chromium (snap)"},
}

func readNSS(r rootFS) []*Store {
	var stores []*Store
	dirs := []struct{ dir, owner string }{{"/etc/pki/nssdb", "system NSS"}}
	for _, h := range homes(r) {
		for _, loc := range nssLocations {
			for _, d := range r.glob(h + loc.glob) {
				dirs = append(dirs, struct{ dir, owner string }{d, owner(h) + ", " + loc.owner + " " + filepath.Base(d)})
			}
		}
	}
	for _, d := range dirs {
		db := d.dir + "/cert9.db"
		if !r.Exists(db) {
			continue
		}
		s := &Store{Kind: NSS, Path: d.dir, Owner: d.owner}
		real, err := r.Resolve(db)
		if err == nil {
			err = readCert9(r.Real(real), db, s)
		}
		if err != nil {
			s.problem(db, err)
		}
		stores = append(stores, s)
	}
	return stores
}

// readCert9 reads the certificates of an NSS cert9.db and the SSL trust of
// each. The database is opened read-only and immutable, so a browser that has
// it open is neither disturbed nor able to make the read fail on a lock.
func readCert9(realPath, devicePath string, s *Store) error {
	u := url.URL{Scheme: "file", Path: realPath, RawQuery: "mode=ro&immutable=1"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT %s, %s, %s, %s, %s, %s FROM nssPublic",
		ckaClass, ckaLabel, ckaValue, ckaIssuer, ckaSerial, ckaTrustServerAut))
	if err != nil {
		return fmt.Errorf("not a readable NSS cert9.db: %w", err)
	}
	defer rows.Close()
	type key struct{ issuer, serial string }
	type certRow struct {
		label string
		der   []byte
	}
	var certs []certRow
	var keys []key
	trust := map[key]Trust{}
	for rows.Next() {
		var class, label, value, issuer, serial, serverAuth []byte
		if err := rows.Scan(&class, &label, &value, &issuer, &serial, &serverAuth); err != nil {
			return err
		}
		k := key{string(issuer), string(serial)}
		switch ulong(class) {
		case ckoCertificate:
			certs = append(certs, certRow{string(label), value})
			keys = append(keys, k)
		case ckoNSSTrust:
			switch ulong(serverAuth) {
			case cktTrustedDeleg:
				trust[k] = Trusted
			case cktNotTrusted:
				trust[k] = Distrusted
			default:
				trust[k] = NoTrust
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i, c := range certs {
		cert, err := chain.NewCert(c.der)
		if err != nil {
			s.problem(devicePath, fmt.Errorf("certificate %q: %v", c.label, err))
			continue
		}
		t, ok := trust[keys[i]]
		if !ok {
			t = NoTrust
		}
		s.Entries = append(s.Entries, Entry{Cert: cert, Trust: t, File: devicePath, Label: c.label})
	}
	return nil
}

// ulong reads an NSS CK_ULONG attribute, stored as 4 big-endian bytes.
func ulong(b []byte) uint32 {
	if len(b) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}
