// Package campaign spreads a measurement campaign over many vantage points
// through a NATS JetStream work queue, so that every named vantage point
// measures every host and a worker that dies loses nothing.
//
// The pieces, and why each is where it is:
//
//   - A campaign's parameters (domains, control SNIs, limits, extra roots,
//     its vantage points, its state) live once in a JetStream key-value
//     bucket (Spec), not in every job, so a job stays a few kilobytes
//     whatever the domain list.
//   - A job (Job) is a batch of hosts for one vantage point, published on
//     the work-queue stream under mitmguard.jobs.VANTAGE.CAMPAIGN: one
//     subject per vantage point, one durable pull consumer per vantage
//     point shared by all its workers. A work-queue stream deletes a job
//     when it is acknowledged, so what is left on a subject is what is
//     left to do.
//   - Submitting is idempotent: each job carries a Nats-Msg-Id the stream
//     deduplicates on, and the Spec records that the campaign was fully
//     submitted, so the same ID submitted again adds nothing.
//   - A Worker acknowledges a job only after its Runner returned nil (the
//     records are committed), sends in-progress acknowledgements while a
//     long job runs, terminates a malformed job with its reason instead of
//     retrying it forever, and retries with backoff while NATS is away.
//
// Job and Spec bytes come from the network (anyone who may publish on the
// stream can write them): both parsers bound and validate everything.
package campaign
