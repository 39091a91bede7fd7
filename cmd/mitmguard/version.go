package main

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/update"
)

// versionInfo is what a bug report needs to know of the binary: which code
// (module version, and the commit the go command stamped at build time) and
// which blocklist it judges with (the active list can be newer than the
// embedded one after mitmguard update).
type versionInfo struct {
	Module       string        `json:"module"`
	Version      string        `json:"version"`
	Revision     string        `json:"revision,omitempty"`
	RevisionTime string        `json:"revision_time,omitempty"`
	Modified     bool          `json:"modified,omitempty"`
	Go           string        `json:"go"`
	Blocklist    blocklistInfo `json:"blocklist"`
}

type blocklistInfo struct {
	Version         int        `json:"version"`
	Entries         int        `json:"entries"`
	Source          string     `json:"source"` // "embedded", or the URL it was updated from
	Installed       *time.Time `json:"installed,omitempty"`
	EmbeddedVersion int        `json:"embedded_version"`
}

// buildVersion reads the version fields from the build information. A
// binary built without module support (bi nil) still says which Go built it.
func buildVersion(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Module: "github.com/mitmguard/mitmguard", Version: "unknown", Go: "unknown"}
	if bi == nil {
		return v
	}
	v.Go = bi.GoVersion
	if bi.Main.Path != "" {
		v.Module, v.Version = bi.Main.Path, bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.RevisionTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// currentVersion describes this binary and the list in force.
func currentVersion(cmd *cobra.Command) versionInfo {
	bi, _ := debug.ReadBuildInfo()
	v := buildVersion(bi)
	l, st, err := update.Active(cacheDir())
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "mitmguard:", err)
	}
	v.Blocklist = blocklistInfo{Version: l.Version, Entries: l.Len(), Source: "embedded", EmbeddedVersion: blocklist.Embedded().Version}
	if st != nil {
		v.Blocklist.Source, v.Blocklist.Installed = st.Source, &st.Installed
	}
	return v
}

func printVersion(cmd *cobra.Command, asJSON bool) error {
	v := currentVersion(cmd)
	out := cmd.OutOrStdout()
	if asJSON {
		return writeJSON(out, v)
	}
	fmt.Fprintf(out, "mitmguard %s\n", v.Version)
	if v.Revision != "" {
		fmt.Fprintf(out, "  revision   %s", v.Revision)
		if v.RevisionTime != "" {
			fmt.Fprintf(out, " (%s)", v.RevisionTime)
		}
		if v.Modified {
			fmt.Fprint(out, ", with uncommitted changes")
		}
		fmt.Fprintln(out)
	} else {
		fmt.Fprintln(out, "  revision   unknown (not built by go build from a git checkout)")
	}
	fmt.Fprintf(out, "  go         %s\n", v.Go)
	b := v.Blocklist
	if b.Installed != nil {
		fmt.Fprintf(out, "  blocklist  version %d, %d entries, installed %s from %s (embedded: version %d)\n",
			b.Version, b.Entries, b.Installed.Format(time.RFC3339), b.Source, b.EmbeddedVersion)
	} else {
		fmt.Fprintf(out, "  blocklist  version %d (embedded), %d entries\n", b.Version, b.Entries)
	}
	return nil
}

func newVersion() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print mitmguard's version, its source revision and the active blocklist's version",
		Long: `version prints the module version and the source revision the binary was
built from (stamped by go build from the git checkout), the Go release that
built it, and the version of the blocklist in force: the embedded one, or the
one mitmguard update installed over it. mitmguard --version prints the same.`,
		Example: "  mitmguard version\n  mitmguard version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print module, version, revision, revision_time, modified, go and blocklist (version, entries, source, installed, embedded_version) as JSON")
	return cmd
}
