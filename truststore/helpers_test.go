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

func mustPlan(t testing.TB, rep *Report, root string, includeNotPublic bool) *Plan {
	t.Helper()
	p, err := MakePlan(rep, root, includeNotPublic)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func undo(root string) error {
	_, err := Undo(root, UndoOptions{})
	return err
}
