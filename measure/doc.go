// Package measure runs interception-measurement campaigns, the way Censored
// Planet found Kazakhstan's interception from outside the country: for each
// host, handshakes with control SNIs (names no middlebox targets) show the
// host's own chain; then one handshake per test domain shows whether
// something on the path answers that SNI differently.
//
// The engine owns the plumbing (input streaming, exclusions, concurrency,
// per-host limits and rate, retries, adaptive timeouts, resumption,
// recording); one handshake is package probe's and one chain's verdict is
// package verdict's. Each (host, SNI) gets one record with an outcome from
// the shared vocabulary:
//
//	ok               the same chain as the control
//	mitm.known:<id>  the chain runs through a blocklisted key
//	mitm.suspected   it differs from the control and ends outside the public
//	                 roots, or carries the forger's traits (the control's
//	                 names on another key, validity shifted, extensions
//	                 stripped, RSA exponent 3)
//	tls.mismatch     it differs, with no sign of interception (virtual hosting)
//	blocked.*        reset, timeout or close after the ClientHello, while the
//	                 control re-run afterwards still succeeds (Quack's check
//	                 against a host that simply broke)
//	error.control_failed, error.dial ...  the measurement could not tell
//
// In remote measurement the SNI is not the server's name, so a hostname
// mismatch is normal: records are judged on the chain, never on the name.
package measure
