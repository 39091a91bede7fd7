package truststore

import "testing"

func read(t testing.TB, root string) []*Store {
	t.Helper()
	stores, err := Read(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return stores
}

func audit(t testing.TB, root string) *Report {
	t.Helper()
	return Audit(read(t, root), nil)
}
