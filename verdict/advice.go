package verdict

// Advice is what a person whose connection is intercepted can do, in the
// order browsers give it. The guard's error and the CLI print the same words.
func Advice() []string {
	return []string{
		"Remove the interception certificate from this device: `mitmguard audit` shows where it is installed and how to remove it.",
		"Until then, connect through a VPN or Tor, which the interception cannot read into.",
		"Change the passwords of accounts you used over such connections: they may have been read.",
	}
}
