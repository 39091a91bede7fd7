package measure

import (
	"context"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/verdict"
)

// Judge judges what answered a test SNI against the host's own chain (what
// its control saw), on the chain alone: in remote measurement the SNI is
// not the server's name. A campaign judges its tests with it, and probe
// --locate each hop's answer, so that a trace calls forged exactly what the
// campaign did.
type Judge struct {
	cl      *verdict.Classifier
	control chain.Chain
	public  bool // the control's chain verifies to a public root
}

// NewJudge judges against control, a chain that came back for a control
// SNI (not empty).
func NewJudge(ctx context.Context, cl *verdict.Classifier, control chain.Chain) *Judge {
	v := cl.Classify(ctx, control, "")
	return &Judge{cl: cl, control: control, public: v.Outcome == outcome.OK}
}

// Chain judges a test's chain: ok when its leaf is the control's, mitm.*
// when the blocklist names it, it shows a forger's traits, or it is not
// public where the host's own chain is; tls.mismatch otherwise. It returns
// the forger's traits and the chain's issuer too.
func (j *Judge) Chain(ctx context.Context, test chain.Chain) (outcome.Outcome, []string, string) {
	if len(test) == 0 {
		return outcome.Invalid, nil, ""
	}
	if test[0].SHA256 == j.control[0].SHA256 {
		return outcome.OK, nil, ""
	}
	traits := Traits(test[0].X509, j.control[0].X509)
	v := j.cl.Classify(ctx, test, "")
	switch {
	case v.Outcome.Intercepted() && v.Outcome != outcome.Suspected:
		return v.Outcome, traits, v.Issuer // mitm.known
	case forged(traits):
		return outcome.Suspected, traits, v.Issuer
	case v.Outcome != outcome.OK && j.public:
		// The host's own chain is public; what answered this SNI is not.
		return outcome.Suspected, traits, v.Issuer
	}
	return outcome.Mismatch, traits, v.Issuer
}
