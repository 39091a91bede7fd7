// Package distrust removes the trust of the roots an audit flagged, store by
// store, reversibly: it plans, applies and undoes, with a journal.
//
// It is the root-privileged half of what truststore's read-only audit
// finds, and depends on truststore, never the other way. Distrust is done
// the way each store expects (update-ca-certificates, a p11-kit blocklist
// file, certutil, keytool), never by editing a format behind its owner's
// back. Every path a step may change is resolved inside the root (see
// internal/rootfs) and snapshotted into a journal, with paths relative to
// the root, before the step runs; Undo checks the journal, the backups'
// hashes and every path against how the apply left it, then restores each
// file byte for byte with its owner, group and mode, even after an
// interrupted apply.
package distrust
