//go:build windows

package distrust

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// liveJournalDir is %ProgramData%\mitmguard\distrust. ProgramData, unlike
// C:\var\lib, is where services keep state; its subfolders are still
// creatable by ordinary users, so makeJournalDir and checkJournalOwner
// guard the folder.
func liveJournalDir() (string, error) {
	pd, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0)
	if err != nil || pd == "" {
		pd = os.Getenv("ProgramData")
	}
	if pd == "" || !filepath.IsAbs(pd) {
		return "", fmt.Errorf("distrust: cannot find the ProgramData folder: %v", err)
	}
	return filepath.Join(pd, "mitmguard", "distrust"), nil
}

// adminOnly is the security descriptor of the journal folders: owned by
// Administrators, a protected DACL (nothing inherited from ProgramData)
// granting full control to Administrators and SYSTEM, inherited by what
// is created inside, and nothing to anyone else.
const adminOnly = "O:BAD:P(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)"

// makeJournalDir makes dir and its parent with the adminOnly descriptor;
// a folder that already exists must be owned by Administrators or SYSTEM
// (someone else may have made it first, to plant a journal later).
func makeJournalDir(dir string) error {
	sd, err := windows.SecurityDescriptorFromString(adminOnly)
	if err != nil {
		return err
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		p, err := windows.UTF16PtrFromString(d)
		if err != nil {
			return err
		}
		sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
		sa.Length = uint32(unsafe.Sizeof(*sa))
		err = windows.CreateDirectory(p, sa)
		if err != nil && !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
			return fmt.Errorf("creating %s: %w", d, err)
		}
		if err := checkJournalOwner(d); err != nil {
			return err
		}
	}
	return nil
}

// checkJournalOwner refuses a file or folder whose owner is not the
// Administrators group or SYSTEM: an ordinary user could have planted it.
func checkJournalOwner(p string) error {
	sd, err := windows.GetNamedSecurityInfo(p, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("reading the owner of %s: %w", p, err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Errorf("reading the owner of %s: %w", p, err)
	}
	if owner == nil || !owner.IsWellKnown(windows.WinBuiltinAdministratorsSid) && !owner.IsWellKnown(windows.WinLocalSystemSid) {
		return fmt.Errorf("%s is owned by %s, not by Administrators or SYSTEM: someone else may have planted it; check it and remove it by hand", p, owner)
	}
	return nil
}
