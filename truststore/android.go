package truststore

import (
	"bytes"
	"path"
)

// Android's stores (an image, or a folder pulled from a phone): the system
// roots, and each user's added and removed ones.
const (
	AndroidSystem  Kind = "android-system"       // system/etc/security/cacerts, the Conscrypt APEX
	AndroidAdded   Kind = "android-user-added"   // data/misc/user/N/cacerts-added
	AndroidRemoved Kind = "android-user-removed" // data/misc/user/N/cacerts-removed
)

// androidSystemDirs hold the system roots: the system image's folder and,
// since Android 14, the Conscrypt module's, which replaces it.
var androidSystemDirs = []string{
	"/system/etc/security/cacerts",
	"/apex/com.android.conscrypt/cacerts",
	"/system/apex/com.android.conscrypt/cacerts",
}

// androidUserDirs are the per-user folders (and the keychain folder of
// Android before 4.4), as globs.
var androidUserDirs = []string{"/data/misc/user/*", "/data/misc/keychain"}

// readAndroid reads Android's stores. A system root the user disabled is
// a copy in cacerts-removed: it is marked distrusted in the system store
// too, as the phone's owner sees it.
func readAndroid(r rootFS) []*Store {
	var stores []*Store
	removed := map[string]bool{}
	var system []*Store
	for _, d := range androidSystemDirs {
		if r.IsDir(d) {
			s := readAndroidDir(r, AndroidSystem, d, "system", Trusted)
			system = append(system, s)
			stores = append(stores, s)
		}
	}
	for _, pattern := range androidUserDirs {
		for _, u := range r.glob(pattern) {
			owner := "Android user " + path.Base(u)
			if path.Base(u) == "keychain" {
				owner = "Android keychain (before 4.4)"
			}
			if d := u + "/cacerts-added"; r.IsDir(d) {
				stores = append(stores, readAndroidDir(r, AndroidAdded, d, owner, Trusted))
			}
			if d := u + "/cacerts-removed"; r.IsDir(d) {
				s := readAndroidDir(r, AndroidRemoved, d, owner, Distrusted)
				for _, e := range s.Entries {
					removed[string(e.Cert.SHA256[:])] = true
				}
				stores = append(stores, s)
			}
		}
	}
	for _, s := range system {
		for i, e := range s.Entries {
			if removed[string(e.Cert.SHA256[:])] {
				s.Entries[i].Trust = Distrusted
			}
		}
	}
	return stores
}

// readAndroidDir reads the files of one folder, named by subject hash
// (5ad8a5d6.0). System files hold `openssl x509 -text` output before the
// PEM block; that text is not an error. User files are DER or PEM.
func readAndroidDir(r rootFS, kind Kind, dir, owner string, trust Trust) *Store {
	s := &Store{Kind: kind, Path: dir, Owner: owner}
	ents, err := r.ReadDir(dir)
	if err != nil {
		s.problem(dir, err)
		return s
	}
	for _, e := range ents {
		p := dir + "/" + e.Name()
		if !isHashName(e.Name()) {
			continue
		}
		data, err := r.readFile(p)
		if err != nil {
			s.problem(p, err)
			continue
		}
		if i := bytes.Index(data, begin); i > 0 {
			data = data[i:] // the text dump Android puts before the block
		}
		certs, problems := ParseCertFile(data)
		for _, pr := range problems {
			s.problem(p, pr)
		}
		for _, c := range certs {
			s.Entries = append(s.Entries, Entry{Cert: c, Trust: trust, File: p})
		}
	}
	return s
}
