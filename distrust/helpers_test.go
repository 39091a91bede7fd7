package distrust

import (
	"testing"

	"github.com/mitmguard/mitmguard/truststore"
)

func read(t testing.TB, root string) []*truststore.Store {
	t.Helper()
	stores, err := truststore.Read(truststore.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return stores
}

func audit(t testing.TB, root string) *truststore.Report {
	t.Helper()
	return truststore.Audit(read(t, root), nil)
}

func mustPlan(t testing.TB, rep *truststore.Report, root string, includeNotPublic bool) *Plan {
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
