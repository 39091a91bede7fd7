package main

import (
	"runtime/debug"
	"testing"
)

// The version comes from what the go command stamps into the binary: the
// module version and, for a build from a git checkout, the revision.
func TestBuildVersion(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/mitmguard/mitmguard", Version: "v0.3.1-0.20261125182633-b1ff818a0b1c+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "b1ff818a0b1c2d3e4f5061728394a5b6c7d8e9f0"},
			{Key: "vcs.time", Value: "2026-11-25T18:26:33Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	v := buildVersion(bi)
	want := versionInfo{Module: "github.com/mitmguard/mitmguard", Version: "v0.3.1-0.20261125182633-b1ff818a0b1c+dirty",
		Revision: "b1ff818a0b1c2d3e4f5061728394a5b6c7d8e9f0", RevisionTime: "2026-11-25T18:26:33Z", Modified: true, Go: "go1.26.0"}
	if v != want {
		t.Errorf("buildVersion:\n got %+v\nwant %+v", v, want)
	}
	if v := buildVersion(nil); v.Version != "unknown" || v.Module != "github.com/mitmguard/mitmguard" {
		t.Errorf("without build info: %+v", v)
	}
}
