package detect

import "strings"

// What the external tests of this directory (package detect_test, which
// import detecthttp and so cannot be in-package tests) need of the
// package's internals. Being a _test file, none of it is public API.

// CheckerWithReference builds a checker from another reference.json and the
// embedded mitmengine data.
func CheckerWithReference(ref []byte) (*Checker, error) {
	return NewChecker(ref, browserTxt, mitmTxt, badHeaderTxt)
}

// JudgeAgain judges the hello behind r again with c, from the features and
// JA4 that r holds.
func JudgeAgain(c *Checker, r *Result) *Result {
	maxVersion := r.Features.Version
	if strings.HasPrefix(r.JA4, "t13") {
		maxVersion = 0x0304
	}
	out := &Result{Browser: r.Browser, Reasons: []Reason{}}
	c.judge(out, r.Features, maxVersion, r.JA4)
	return out
}
