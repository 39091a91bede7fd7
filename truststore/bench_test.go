package truststore

import "testing"

// BenchmarkAuditThisMachine reads and audits this machine's real stores,
// what `mitmguard audit` does (goal: well under a second).
func BenchmarkAuditThisMachine(b *testing.B) {
	n := 0
	for b.Loop() {
		stores, _ := Read(Options{})
		rep := Audit(stores, nil)
		n = len(rep.Findings)
	}
	b.ReportMetric(float64(n), "findings")
}
