package blocklist

// Advice is what a person whose connection runs through an interception
// root can do, in the order browsers give it. It lives with the list, not
// with the classifier, so that a program linking only the guard prints the
// same words as the CLI without linking the classifier.
func Advice() []string {
	return []string{
		"Remove the interception certificate from this device: `mitmguard audit` shows where it is installed and how to remove it.",
		"Until then, connect through a VPN or Tor, which the interception cannot read into.",
		"Change the passwords of accounts you used over such connections: they may have been read.",
	}
}
