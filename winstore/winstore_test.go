package winstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/internal/regf"
	"github.com/mitmguard/mitmguard/internal/regf/regftest"
	"github.com/mitmguard/mitmguard/internal/storetest"
	"github.com/mitmguard/mitmguard/winstore"
	"github.com/mitmguard/mitmguard/winstore/winstoretest"
)

func der(t testing.TB, id string) []byte {
	t.Helper()
	c, err := chain.ParsePEM([]byte(storetest.PEMOf(t, id)))
	if err != nil {
		t.Fatal(err)
	}
	return c[0].DER
}

const (
	machineRoot       = `Microsoft\SystemCertificates\ROOT`
	machineDisallowed = `Microsoft\SystemCertificates\Disallowed`
	policyRoot        = `Policies\Microsoft\SystemCertificates\Root`
	enterpriseRoot    = `Microsoft\EnterpriseCertificates\Root`
	userRoot          = `Software\Microsoft\SystemCertificates\Root`
	userDisallowed    = `Software\Microsoft\SystemCertificates\Disallowed`
)

type fixture struct {
	dir                               string
	qaznet, isca, iscaCA, corp, other []byte
}

func newFixture(t *testing.T) fixture {
	f := fixture{
		qaznet: der(t, "kz-2019-qaznet"), isca: der(t, "kz-2021-isca"),
		iscaCA: der(t, "kz-2020-isca-ca"), corp: winstoretest.PrivateRoot(t, "Example Corp Root"), other: der(t, "kz-2024-isca"),
	}
	f.dir = winstoretest.Volume(t, winstoretest.Spec{
		Machine: []winstoretest.Placement{
			{Key: machineRoot, DER: f.qaznet},
			{Key: machineRoot, DER: f.iscaCA},
			{Key: machineDisallowed, DER: f.iscaCA}, // already distrusted
			{Key: policyRoot, DER: f.corp},
			{Key: enterpriseRoot, DER: f.corp},
		},
		Users: map[string][]winstoretest.Placement{
			"Aigerim": {{Key: userRoot, DER: f.isca}},
			// Bob distrusted kz-2024-isca for himself only.
			"bob": {{Key: userRoot, DER: f.other}, {Key: userDisallowed, DER: f.other}},
		},
	})
	return f
}

// seen is one certificate as found: store, location, user, distrusted.
type seen struct {
	store    string
	loc      winstore.Location
	user     string
	distrust bool
}

func index(v *winstore.Volume) map[string][]seen {
	out := map[string][]seen{}
	for _, s := range v.Stores {
		for _, e := range s.Entries {
			out[e.Thumbprint] = append(out[e.Thumbprint], seen{s.Name, s.Location, s.User, e.Distrusted})
		}
	}
	return out
}

func TestReadVolume(t *testing.T) {
	f := newFixture(t)
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if !winstore.IsVolume(root.FS()) {
		t.Fatal("not recognised as a Windows volume")
	}
	v, err := winstore.ReadDir(context.Background(), f.dir, regf.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Problems) != 0 {
		t.Fatalf("problems: %v", v.Problems)
	}
	for _, s := range v.Stores {
		if len(s.Problems) != 0 {
			t.Fatalf("store %s %s: %v", s.Location, s.Name, s.Problems)
		}
	}
	got := index(v)
	check := func(name string, d []byte, want ...seen) {
		t.Helper()
		g := got[winstore.Thumbprint(d)]
		if len(g) != len(want) {
			t.Fatalf("%s: found %+v, want %+v", name, g, want)
		}
		for i := range want {
			if g[i] != want[i] {
				t.Errorf("%s: found %+v, want %+v", name, g[i], want[i])
			}
		}
	}
	check("Qaznet", f.qaznet, seen{"ROOT", winstore.Machine, "", false})
	check("ISCA CA", f.iscaCA, seen{"ROOT", winstore.Machine, "", true}, seen{"Disallowed", winstore.Machine, "", true})
	check("corporate", f.corp, seen{"Root", winstore.MachinePolicy, "", false}, seen{"Root", winstore.Enterprise, "", false})
	check("ISCA", f.isca, seen{"Root", winstore.User, "Aigerim", false})
	check("ISCA 2024", f.other, seen{"Root", winstore.User, "bob", true}, seen{"Disallowed", winstore.User, "bob", true})

	// The certificate is the one placed, and the store says where it is.
	for _, s := range v.Stores {
		if s.User == "Aigerim" {
			if !bytes.Equal(s.Entries[0].Cert.DER, f.isca) || s.Hive != "Users/Aigerim/ntuser.dat" || s.Key != userRoot {
				t.Fatalf("user store %+v", s)
			}
			if !strings.Contains(s.Entries[0].Cert.Subject(), "Information Security Certification Authority") {
				t.Fatal(s.Entries[0].Cert.Subject())
			}
		}
	}
}

func TestMarkDistrustedScope(t *testing.T) {
	c, _ := chain.ParsePEM([]byte(storetest.PEMOf(t, "kz-2019-qaznet")))
	e := winstore.Entry{Cert: c[0]}
	userDis := &winstore.Store{Name: "Disallowed", Location: winstore.User, User: "bob", Entries: []winstore.Entry{e}}
	machineRoot := &winstore.Store{Name: "ROOT", Location: winstore.Machine, Entries: []winstore.Entry{e}}
	aliceRoot := &winstore.Store{Name: "Root", Location: winstore.User, User: "alice", Entries: []winstore.Entry{e}}
	bobRoot := &winstore.Store{Name: "Root", Location: winstore.User, User: "bob", Entries: []winstore.Entry{e}}
	winstore.MarkDistrusted([]*winstore.Store{userDis, machineRoot, aliceRoot, bobRoot})
	if machineRoot.Entries[0].Distrusted || aliceRoot.Entries[0].Distrusted || !bobRoot.Entries[0].Distrusted {
		t.Fatal("a user's Disallowed store must apply to that user only")
	}
	policyDis := &winstore.Store{Name: "Disallowed", Location: winstore.MachinePolicy, Entries: []winstore.Entry{e}}
	winstore.MarkDistrusted([]*winstore.Store{policyDis, aliceRoot})
	if !aliceRoot.Entries[0].Distrusted {
		t.Fatal("a machine Disallowed store applies to every user")
	}
}

func hivePath(dir string) string {
	return filepath.Join(dir, "Windows", "system32", "CONFIG", "SOFTWARE")
}

func TestHostileVolume(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	// A user's hive that is a symbolic link out of the volume: refused.
	outside := filepath.Join(t.TempDir(), "NTUSER.DAT")
	if err := os.Rename(filepath.Join(f.dir, "Users", "Aigerim", "ntuser.dat"), outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(f.dir, "Users", "Aigerim", "ntuser.dat")); err != nil {
		t.Fatal(err)
	}
	// A folder where a hive should be.
	if err := os.MkdirAll(filepath.Join(f.dir, "Users", "Dir", "NTUSER.DAT"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A truncated hive.
	b, _ := os.ReadFile(filepath.Join(f.dir, "Users", "bob", "ntuser.dat"))
	if err := os.WriteFile(filepath.Join(f.dir, "Users", "bob", "ntuser.dat"), b[:len(b)-4096], 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := winstore.ReadDir(ctx, f.dir, regf.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	problems := map[string]error{}
	for _, p := range v.Problems {
		problems[p.Path] = p.Err
	}
	if len(problems) != 3 {
		t.Fatalf("problems %v", v.Problems)
	}
	if err := problems["Users/Aigerim/ntuser.dat"]; err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Errorf("symlink out of the root: %v", err)
	}
	var nr *winstore.NotRegularError
	if err := problems["Users/Dir/NTUSER.DAT"]; !errors.As(err, &nr) {
		t.Errorf("folder as hive: %v", err)
	}
	var ce *regf.CorruptError
	if err := problems["Users/bob/ntuser.dat"]; !errors.As(err, &ce) {
		t.Errorf("truncated hive: %v", err)
	}
	for _, s := range v.Stores {
		if s.User != "" {
			t.Errorf("a user store was read from a refused hive: %+v", s)
		}
	}
	if got := index(v)[winstore.Thumbprint(f.qaznet)]; len(got) != 1 {
		t.Errorf("the machine hive is still read: %+v", got)
	}

	// A 1 GB SOFTWARE hive: refused from its size.
	if err := os.Truncate(hivePath(f.dir), 1<<30); err != nil {
		t.Fatal(err)
	}
	v, err = winstore.ReadDir(ctx, f.dir, regf.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var tl *regf.TooLargeError
	if len(v.Problems) == 0 || !errors.As(v.Problems[0].Err, &tl) {
		t.Fatalf("1 GB hive: %v", v.Problems)
	}

	// Not a Windows volume.
	var nw *winstore.NotWindowsError
	if _, err := winstore.ReadDir(ctx, t.TempDir(), regf.Limits{}); !errors.As(err, &nw) {
		t.Fatalf("empty folder: %v", err)
	}
}

func TestDecodeBlob(t *testing.T) {
	d := der(t, "kz-2019-qaznet")
	got, err := winstore.DecodeBlob(winstoretest.Blob(d))
	if err != nil || !bytes.Equal(got, d) {
		t.Fatalf("%v", err)
	}
	blob := winstoretest.Blob(d)
	var be *winstore.BlobError
	for name, b := range map[string][]byte{
		"truncated":   blob[:len(blob)-1],
		"short head":  blob[:5],
		"no cert":     blob[:12+20],
		"two certs":   append(bytes.Clone(blob), blob[len(blob)-len(d)-12:]...),
		"huge length": append([]byte{32, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, d...),
	} {
		if _, err := winstore.DecodeBlob(b); !errors.As(err, &be) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeBlob decodes arbitrary bytes as a certificate blob: an error or
// a DER inside the input, never a panic.
func FuzzDecodeBlob(f *testing.F) {
	f.Add(winstoretest.Blob(der(f, "kz-2019-qaznet")))
	f.Add([]byte{32, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := winstore.DecodeBlob(b)
		if err == nil && len(d) > len(b)-12 {
			t.Fatalf("DER of %d bytes from a %d-byte blob", len(d), len(b))
		}
	})
}

// FuzzReadHive reads arbitrary bytes as a SOFTWARE hive and as a user's
// NTUSER.DAT through the store reader: an error or stores, never a panic,
// and every certificate found is named by its own thumbprint.
func FuzzReadHive(f *testing.F) {
	f.Add(mustRead(f, hiveOf(f)))
	f.Add([]byte("regf"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := regf.Open(bytes.NewReader(b), int64(len(b)), regf.Limits{MaxCells: 1 << 14})
		if err != nil {
			return
		}
		for _, stores := range [][]*winstore.Store{winstore.ReadSoftware(h, "SOFTWARE"), winstore.ReadNTUser(h, "NTUSER.DAT", "u")} {
			for _, s := range stores {
				for _, e := range s.Entries {
					if e.Thumbprint != winstore.Thumbprint(e.Cert.DER) {
						t.Fatalf("entry %s holds another certificate", e.Thumbprint)
					}
				}
			}
		}
	})
}

// hiveOf is a SOFTWARE hive written by hivexsh holding Qaznet in ROOT and
// Disallowed, for the fuzz corpus.
func hiveOf(t testing.TB) string {
	t.Helper()
	d := der(t, "kz-2019-qaznet")
	return regftest.Hive(t, "SOFTWARE", winstoretest.Script([]winstoretest.Placement{{Key: machineRoot, DER: d}, {Key: machineDisallowed, DER: d}}))
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The hives of one volume share a budget of bytes read: a hostile hive
// that spends its own budget, hard-linked as the NTUSER.DAT of a thousand
// profiles, cannot make the audit read a thousand times as much. Each
// profile beyond the budget is a problem of the volume.
func TestVolumeReadBudget(t *testing.T) {
	f := newFixture(t)
	hive := filepath.Join(f.dir, "Users", "Aigerim", "ntuser.dat")
	b := mustRead(t, hive)
	h, err := regf.Open(bytes.NewReader(b), int64(len(b)), regf.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	winstore.ReadNTUser(h, "ntuser.dat", "Aigerim")
	perUser := h.BytesRead()
	perHive := perUser
	sw := mustRead(t, hivePath(f.dir))
	h, _ = regf.Open(bytes.NewReader(sw), int64(len(sw)), regf.Limits{})
	winstore.ReadSoftware(h, "SOFTWARE")
	if h.BytesRead() > perHive {
		perHive = h.BytesRead()
	}
	const profiles = 60
	for i := range profiles {
		dir := filepath.Join(f.dir, "Users", fmt.Sprintf("u%03d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(hive, filepath.Join(dir, "NTUSER.DAT")); err != nil {
			t.Fatal(err)
		}
	}
	v, err := winstore.ReadDir(context.Background(), f.dir, regf.Limits{MaxRead: perHive})
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]bool{}
	for _, s := range v.Stores {
		users[s.User] = true
	}
	var le *regf.LimitError
	if most := int(winstore.VolumeHives*perHive/perUser) + 1; len(users) > most || len(v.Problems) == 0 || !errors.As(v.Problems[len(v.Problems)-1].Err, &le) {
		t.Fatalf("read the stores of %d profiles with a budget of %d hives (%d profiles' worth); problems %v", len(users), winstore.VolumeHives, most, v.Problems)
	}
}
