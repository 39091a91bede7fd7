package distrust

import (
	"github.com/mitmguard/mitmguard/truststore"

	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/internal/storetest"
)

// A Fedora-style packaged p11-kit bundle: Mozilla roots trusted, one
// explicitly distrusted object, a certificate extension object, and an
// injected Kazakh root marked trusted. The audit flags only the Kazakh root;
// the distrust writes the admin's blocklist folder, not /usr/share; the
// audit afterwards finds it distrusted.
func TestP11KitPackagedBundle(t *testing.T) {
	root := t.TempDir()
	obj := func(label, flags, pemText string) string {
		return fmt.Sprintf("[p11-kit-object-v1]\nlabel: %q\n%s\nmodifiable: false\n%s\n", label, flags, pemText)
	}
	bundle := obj("Root A", "trusted: true\nnss-mozilla-ca-policy: true", storetest.Mozilla(0)) +
		obj("Root B", "trusted: true\nnss-mozilla-ca-policy: true", storetest.Mozilla(1)) +
		obj("Old distrusted", "x-distrusted: true", storetest.Mozilla(2)) +
		"[p11-kit-object-v1]\nclass: x-certificate-extension\nlabel: \"Root A\"\nobject-id: 2.5.29.37\nvalue: \"%30%0a\"\n\n" +
		obj("Qaznet truststore.Trust Network", "trusted: true", storetest.PEMOf(t, "kz-2019-qaznet"))
	storetest.Write(t, filepath.Join(root, "usr/share/pki/ca-trust-source/ca-bundle.trust.p11-kit"), bundle)

	rep := audit(t, root)
	var known, notPublic []string
	for _, f := range rep.Findings {
		if f.Store != truststore.P11KitSource {
			continue
		}
		switch {
		case f.Status == truststore.KnownInterception && f.Trust == truststore.Trusted:
			known = append(known, f.Label)
		case f.Status == truststore.NotPublic:
			notPublic = append(notPublic, f.Label)
		}
	}
	if strings.Join(known, ",") != "Qaznet truststore.Trust Network" || len(notPublic) != 0 {
		t.Fatalf("known %v, not public %v", known, notPublic)
	}
	plan := mustPlan(t, rep, root, false)
	if len(plan.Steps) != 1 || !strings.HasPrefix(plan.Steps[0].Changes[0], "/etc/pki/ca-trust/source/blocklist") {
		t.Fatalf("plan %+v", plan.Steps)
	}
	if _, err := Apply(context.Background(), plan, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if audit(t, root).TrustsKnownInterception() {
		t.Error("the Kazakh root is still trusted after the distrust")
	}
	if err := undo(root); err != nil {
		t.Fatal(err)
	}
}
