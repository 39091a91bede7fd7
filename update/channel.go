package update

import (
	"bufio"
	"bytes"
	"embed"
	"strings"
)

// channelFiles is the default channel, set by a release in update/channel/
// (root.json and mirrors.txt): the one place in the source that says which
// repository a plain `mitmguard update` trusts and where it is served.
//
//go:embed channel
var channelFiles embed.FS

// Channel is a repository to update from: the root metadata trusted at first
// use and the mirrors that serve it.
type Channel struct {
	Root    []byte
	Mirrors []string
}

// DefaultChannel returns the channel embedded in this build; both fields are
// empty until a release sets them.
func DefaultChannel() Channel {
	var ch Channel
	if b, err := channelFiles.ReadFile("channel/root.json"); err == nil && len(bytes.TrimSpace(b)) > 0 {
		ch.Root = b
	}
	if b, err := channelFiles.ReadFile("channel/mirrors.txt"); err == nil {
		ch.Mirrors = ParseMirrors(b)
	}
	return ch
}

// ParseMirrors reads a list of mirror URLs, one per line; blank lines and
// text after '#' are ignored.
func ParseMirrors(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}
