// Package truststore reads the trust stores a device has (Linux, an Android
// image, a mounted Windows volume or Windows itself) and audits them against
// the blocklist and the public root program. It only reads:
// the root-privileged distrust, with its journal, is package distrust,
// which depends on this one and never the other way.
//
// Kazakh users were told to install the government root "on every device and
// in every browser": in the system bundle, in Chrome's and Firefox's NSS
// databases, in Java. Browsers later refused the root, but it stayed
// installed and every other program kept trusting it. An audit has to look
// everywhere a root can hide, so each store kind has a small reader:
//
//   - Debian/Ubuntu: the bundle /etc/ssl/certs/ca-certificates.crt, the
//     OpenSSL hashed directory /etc/ssl/certs, the administrator's
//     /usr/local/share/ca-certificates and the packaged
//     /usr/share/ca-certificates with its selection /etc/ca-certificates.conf;
//   - p11-kit sources (Fedora/RHEL, Arch): anchors and blocklist directories,
//     where a blocklisted certificate is distrusted whatever the anchors say,
//     and the .p11-kit files of the base folders (Fedora's packaged
//     ca-bundle.trust.p11-kit) with each object's own trust flags;
//   - NSS databases (cert9.db, read-only with a pure-Go SQLite driver) of
//     Chrome/Chromium and every Firefox profile, with their trust flags;
//   - Java keystores (JKS, read by this package's own bounded parser, and
//     PKCS#12), with the default password;
//   - Android: the system roots, each user's added roots and the system
//     roots a user turned off;
//   - Windows: the registry stores of a mounted volume's SOFTWARE and
//     NTUSER.DAT hives (package winstore), opened through an os.Root of
//     their own, so a link out of the volume is refused rather than
//     resolved; on Windows itself, the live stores through CryptoAPI;
//   - any PEM or DER file or folder the user names.
//
// Every path is taken under a root folder, "/" for the running system, so the
// same code audits a disk image or a test fixture; every path and link is
// resolved inside that folder as a chroot would (internal/rootfs), so a
// hostile image cannot make the audit read the machine's own files. A store
// that cannot be read yields a Problem and the audit goes on with the others;
// a root that cannot be opened is an error, never an empty audit.
package truststore
