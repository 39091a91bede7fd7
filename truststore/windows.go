package truststore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/mitmguard/mitmguard/internal/regf"
	"github.com/mitmguard/mitmguard/winstore"
)

// Windows's stores: read from the registry hives of a mounted volume
// (SOFTWARE and each Users/*/NTUSER.DAT) or, on Windows itself, through
// CryptoAPI. A certificate in a Disallowed store that applies to a store
// is distrusted there.
const (
	WindowsRoot       Kind = "windows-root"       // ROOT: the roots the machine or user trusts
	WindowsAuthRoot   Kind = "windows-authroot"   // AuthRoot: Microsoft's root program, as downloaded
	WindowsCA         Kind = "windows-ca"         // CA: intermediates, not trusted as roots
	WindowsDisallowed Kind = "windows-disallowed" // Disallowed: explicitly distrusted
	// WindowsVolume holds what could not be read of a Windows volume at
	// all (a hive, the Users folder): its problems make the audit partial.
	WindowsVolume Kind = "windows-volume"
)

// IsWindows reports whether a store kind is one of Windows's.
func IsWindows(k Kind) bool {
	switch k {
	case WindowsRoot, WindowsAuthRoot, WindowsCA, WindowsDisallowed, WindowsVolume:
		return true
	}
	return false
}

// readWindowsVolume reads the Windows volume under root, through an
// os.Root of its own: a link out of the volume is refused with an error
// (see winstore.OutsideError), not reinterpreted inside it as the Linux
// stores' chroot resolution would. A root without a Windows folder gives
// nothing.
func readWindowsVolume(root string) []*Store {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil // the Linux readers report an unreadable root
	}
	defer r.Close()
	v, err := winstore.ReadRoot(context.Background(), r, regf.Limits{})
	var nw *winstore.NotWindowsError
	if errors.As(err, &nw) {
		return nil
	}
	if err != nil {
		return []*Store{{Kind: WindowsVolume, Path: "/", Owner: "system", Problems: []Problem{{Path: "/", Err: err}}}}
	}
	return fromWindows(v.Stores, v.Problems)
}

// fromWindows turns Windows stores into this package's, and the problems
// of a volume into a WindowsVolume store.
func fromWindows(stores []*winstore.Store, problems []winstore.Problem) []*Store {
	var out []*Store
	for _, ws := range stores {
		s := &Store{Kind: windowsKind(ws.Name), Path: WindowsStorePath(ws), Owner: windowsOwner(ws), windows: ws}
		file := ""
		if ws.Hive != "" {
			file = "/" + ws.Hive
		}
		for _, e := range ws.Entries {
			trust := Trusted
			switch {
			case e.Distrusted:
				trust = Distrusted
			case s.Kind == WindowsCA:
				trust = NoTrust
			}
			s.Entries = append(s.Entries, Entry{Cert: e.Cert, Trust: trust, File: file, Label: e.Thumbprint})
		}
		for _, p := range ws.Problems {
			where := p.Path
			if ws.Hive != "" {
				where = "/" + where // a device path, as the other stores' problems
			}
			s.Problems = append(s.Problems, Problem{Path: where, Err: p.Err})
		}
		out = append(out, s)
	}
	if len(problems) > 0 {
		s := &Store{Kind: WindowsVolume, Path: "/", Owner: "system"}
		for _, p := range problems {
			s.Problems = append(s.Problems, Problem{Path: "/" + p.Path, Err: p.Err})
		}
		out = append(out, s)
	}
	return out
}

// WindowsStores returns the Windows stores the audit read (a mounted
// volume's hives, or the running Windows's stores), nil when it read none:
// a distrust plan made from them is about exactly what the report shows,
// and the hives are not read a second time.
func (r *Report) WindowsStores() []*winstore.Store {
	var out []*winstore.Store
	for _, s := range r.stores {
		if s.windows != nil {
			out = append(out, s.windows)
		}
	}
	return out
}

func windowsKind(name string) Kind {
	switch {
	case strings.EqualFold(name, winstore.Root):
		return WindowsRoot
	case strings.EqualFold(name, winstore.AuthRoot):
		return WindowsAuthRoot
	case strings.EqualFold(name, winstore.Disallowed):
		return WindowsDisallowed
	}
	return WindowsCA
}

// WindowsStorePath names a store as the registry does: HKLM\SOFTWARE\... for
// the machine's, HKCU\Software\... for a user's (the user is the owner);
// live, as the PowerShell Cert: drive does.
func WindowsStorePath(s *winstore.Store) string {
	switch {
	case s.Hive == "":
		return s.Key
	case s.User == "":
		return `HKLM\SOFTWARE\` + s.Key
	}
	return `HKCU\` + s.Key
}

func windowsOwner(s *winstore.Store) string {
	who := "machine"
	if s.User != "" {
		who = "user " + s.User
	}
	switch s.Location {
	case winstore.MachinePolicy, winstore.UserPolicy:
		who += " (Group Policy)"
	case winstore.Enterprise:
		who += " (enterprise)"
	}
	return who
}

// windowsAction says what to do about a root trusted in a Windows store.
func windowsAction(f Finding) string {
	managed := strings.Contains(f.StorePath, `\Policies\`) || strings.Contains(f.StorePath, `\EnterpriseCertificates\`)
	if managed {
		return fmt.Sprintf("pushed by the domain (%s): remove it from the Group Policy object or enrolment that deploys it; mitmguard distrust --script powershell adds it to Disallowed meanwhile", f.StorePath)
	}
	drive := `Cert:\LocalMachine\`
	if strings.HasPrefix(f.Owner, "user ") {
		drive = `Cert:\CurrentUser\`
	}
	store := "Root"
	switch f.Store {
	case WindowsAuthRoot:
		store = "AuthRoot"
	case WindowsCA:
		store = "CA"
	}
	return fmt.Sprintf("on that Windows: mitmguard distrust --script powershell writes the PowerShell that adds it to Cert:\\LocalMachine\\Disallowed and runs Remove-Item %s%s\\%s", drive, store, f.Label)
}
