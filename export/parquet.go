package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/store"
)

// RecordRow is one record in the Parquet export (records/...). Strings that
// repeat (campaign, vantage, host, SNI, outcome, issuer, hashes) are
// dictionary-encoded, which is most of why a record costs tens of bytes.
// An absent issuer or error is the empty string. docs/export.md documents
// each column; change both together.
type RecordRow struct {
	Campaign       string    `parquet:"campaign,dict"`
	Vantage        string    `parquet:"vantage,dict"`
	VantageASN     int64     `parquet:"vantage_asn,dict"`     // declared ASN, 0 when not declared
	VantageCountry string    `parquet:"vantage_country,dict"` // declared ISO 3166-1 alpha-2 code, "" when not declared
	Host           string    `parquet:"host,dict"`
	SNI            string    `parquet:"sni,dict"`
	Outcome        string    `parquet:"outcome,dict"`
	Time           time.Time `parquet:"time,timestamp(millisecond:utc),delta"`
	Attempts       int32     `parquet:"attempts"`
	Issuer         string    `parquet:"issuer,dict"`
	Traits         []string  `parquet:"traits,list" parquet-element:",dict"`
	Chain          []string  `parquet:"chain,list" parquet-element:",dict"`
	ControlSNI     string    `parquet:"control_sni,dict"`
	ControlOutcome string    `parquet:"control_outcome,dict"`
	ControlChain   []string  `parquet:"control_chain,list" parquet-element:",dict"`
	Error          string    `parquet:"error,dict"`
	HandshakeMS    float32   `parquet:"handshake_ms"`
}

// CertRow is one certificate in the Parquet export (certificates/...),
// written once per campaign: records refer to it by SHA256.
type CertRow struct {
	Campaign string `parquet:"campaign,dict"`
	SHA256   string `parquet:"sha256"`
	DER      []byte `parquet:"der"`
}

// Options tune the Parquet export; the zero value is the default.
type Options struct {
	// RowGroup is the rows per row group (default 64Ki): what bounds the
	// memory of each open file.
	RowGroup int64
	// MaxOpen is how many partition files each reader (see Readers) may
	// have open at once (default 4).
	// Records come in (vantage, host, SNI) order, so a campaign spanning
	// several days writes several dates at once; past MaxOpen the file
	// used longest ago is closed and its partition continues in the next
	// part-N.
	MaxOpen int
	// Readers is how many ranges of a campaign's hosts are read and
	// encoded side by side (default 1), each into part files of its own:
	// reading the store is most of an export's time, so with idle CPUs
	// more readers finish sooner, at some more CPU and memory per reader
	// (on a busy machine they measured no faster). A store without a bulk
	// read path is read in one.
	Readers int
}

func (o Options) rowGroup() int64 {
	if o.RowGroup <= 0 {
		return 64 << 10
	}
	return o.RowGroup
}

func (o Options) readers() int {
	if o.Readers <= 0 {
		return 1
	}
	return o.Readers
}

func (o Options) maxOpen() int {
	if o.MaxOpen <= 0 {
		return 4
	}
	return o.MaxOpen
}

// Parquet writes the campaigns under dir as
//
//	records/campaign=ID/date=YYYY-MM-DD/part-N.parquet
//	certificates/campaign=ID/part-N.parquet
//
// (the date is the record's measurement time, in UTC). A campaign already
// under dir is refused (ExistsError); a failed export removes what it wrote
// of the campaign.
func Parquet(ctx context.Context, st store.Store, cs []*store.Campaign, dir string, o Options) (Stats, error) {
	var stats Stats
	if dir == "" || dir == "-" {
		return stats, ErrOutput
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return stats, ErrOutput
	}
	for _, c := range cs {
		if err := parquetCampaign(ctx, st, c, dir, o, &stats); err != nil {
			return stats, err
		}
	}
	return stats, nil
}

func parquetCampaign(ctx context.Context, st store.Store, c *store.Campaign, dir string, o Options, stats *Stats) (err error) {
	part := "campaign=" + partitionValue(c.ID)
	recDir := filepath.Join(dir, "records", part)
	certDir := filepath.Join(dir, "certificates", part)
	for _, d := range []string{recDir, certDir} {
		if _, err := os.Lstat(d); err == nil {
			return &ExistsError{d}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	defer func() {
		if err != nil {
			os.RemoveAll(recDir)
			os.RemoveAll(certDir)
		}
	}()
	certs := &partitions[CertRow]{o: o, stats: stats, names: &partNames{}}
	defer certs.abort()
	// The store's reader and the Parquet encoder run side by side, with
	// at most pipeBuffers batches between them; with Options.Readers > 1
	// the campaign is cut into ranges of hosts, each read and encoded so
	// into part files of its own. The certificates follow, looked up in
	// batches.
	ranges, err := store.SplitHosts(ctx, st, c, o.readers())
	if err != nil {
		return err
	}
	vantages, err := store.VantageMap(ctx, st, c)
	if err != nil {
		return err
	}
	names := &partNames{}
	pipes := make([]*pipeline, len(ranges))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, rg := range ranges {
		pipes[i] = &pipeline{coder: newRowCoder(c.ID, vantages), w: newRecordWriter(o, names)}
		wg.Go(func() { pipes[i].run(ctx, cancel, st, c, rg, recDir) })
	}
	wg.Wait()
	var hashes []chain.Hash // each range's, which may share some
	for _, p := range pipes {
		stats.Records += p.records
		stats.Files, stats.Bytes = stats.Files+p.w.stats.Files, stats.Bytes+p.w.stats.Bytes
		hashes = append(hashes, p.coder.order...)
	}
	if err := pipelinesErr(pipes); err != nil {
		return err
	}
	if err := writeCerts(ctx, st, c.ID, hashes, certs, certDir, stats); err != nil {
		return err
	}
	if len(certs.names.parts) == 0 { // a campaign without certificates still gets its folder
		if err := os.MkdirAll(certDir, 0o755); err != nil {
			return err
		}
	}
	return certs.close()
}

// writeCerts writes the certificates hs names (sorting hs and dropping
// repeats in place), in hash order. The store's lookups and the encoding
// run side by side, certBatch certificates apart.
func writeCerts(ctx context.Context, st store.Store, campaign string, hs []chain.Hash, certs *partitions[CertRow], dir string, stats *Stats) error {
	// In hash order, the lookups walk the store's certificate tree once
	// from left to right instead of jumping about it.
	slices.SortFunc(hs, func(a, b chain.Hash) int { return bytes.Compare(a[:], b[:]) })
	hs = slices.Compact(hs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []CertRow, 1)
	var lookErr error
	go func() {
		defer close(batches)
		batch := make([]CertRow, 0, certBatch)
		lookErr = store.CertsByHash(ctx, st, hs, func(h chain.Hash, der []byte) error {
			batch = append(batch, CertRow{Campaign: campaign, SHA256: hex.EncodeToString(h[:]), DER: der})
			if len(batch) < certBatch {
				return nil
			}
			select {
			case batches <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = make([]CertRow, 0, certBatch)
			return nil
		})
		if lookErr == nil && len(batch) > 0 {
			batches <- batch // the reader below drains batches to the end
		}
	}()
	var werr error
	for b := range batches {
		for i := 0; i < len(b) && werr == nil; i++ {
			stats.Certs++
			if werr = certs.write(dir, b[i]); werr != nil {
				cancel() // stop the lookups; the loop drains what they sent
			}
		}
	}
	if werr != nil {
		return werr
	}
	if lookErr != nil {
		return fmt.Errorf("export: certificates: %w", lookErr)
	}
	return nil
}

// certBatch is how many certificates writeCerts hands from the lookups to
// the encoding at a time.
const certBatch = 512

// floorDiv is a / b rounded down (times before 1970 too).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// pipelinesErr is the pipelines' failure: the one that stopped the others,
// not the context.Canceled that its cancel gave them (which comes first
// when the failing range is not the first).
func pipelinesErr(pipes []*pipeline) error {
	var first error
	for _, p := range pipes {
		if p.err != nil && !errors.Is(p.err, context.Canceled) {
			return p.err
		}
		if first == nil {
			first = p.err
		}
	}
	return first
}

// pipeline reads one range of a campaign's records and encodes them.
type pipeline struct {
	coder   *rowCoder
	w       *recordWriter
	records int
	err     error // the writer's failure first: it is what cancelled the reader
}

func (p *pipeline) run(ctx context.Context, cancel func(), st store.Store, c *store.Campaign, rg store.Range, recDir string) {
	w := p.w
	go w.run(cancel)
	batch := <-w.free
	lastDay := int64(math.MinInt64)
	var dayDir string
	err := store.StreamRange(ctx, st, c, rg, func(r *store.Row) error {
		t := time.UnixMilli(r.TimeMS).UTC()
		if day := floorDiv(r.TimeMS, 86400_000); day != lastDay {
			lastDay = day
			dayDir = filepath.Join(recDir, "date="+t.Format("2006-01-02"))
		}
		p.records++
		batch.dirs = append(batch.dirs, dayDir)
		batch.rows = append(batch.rows, p.coder.row(r, t))
		if len(batch.rows) < cap(batch.rows) {
			return nil
		}
		select {
		case w.full <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case batch = <-w.free:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	})
	if err == nil && len(batch.rows) > 0 {
		select {
		case w.full <- batch:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	close(w.full)
	<-w.done
	switch {
	case w.err != nil:
		p.err = w.err
	case err != nil:
		p.err = err
		cancel() // stop the other ranges
	}
}

// rowBatch is records handed from the reader to the writer: rows[i] goes
// into the folder dirs[i].
type rowBatch struct {
	dirs []string
	rows []RecordRow
}

const (
	pipeBatch = 2048 // records per batch handed to the writer
	// pipeBuffers is the batches in flight (~0.5 MB each): enough for the
	// reader to go on while the writer flushes a row group, which takes
	// it a while (with 3 the reader waited ~0.25 s of a 1.5 s export).
	pipeBuffers = 16
)

// recordWriter encodes records in its own goroutine.
type recordWriter struct {
	parts      *partitions[RecordRow]
	stats      Stats // files and bytes it wrote
	full, free chan *rowBatch
	done       chan struct{}
	err        error // valid after done
}

func newRecordWriter(o Options, names *partNames) *recordWriter {
	w := &recordWriter{full: make(chan *rowBatch, pipeBuffers), free: make(chan *rowBatch, pipeBuffers), done: make(chan struct{})}
	w.parts = &partitions[RecordRow]{o: o, stats: &w.stats, names: names}
	for range pipeBuffers {
		w.free <- &rowBatch{make([]string, 0, pipeBatch), make([]RecordRow, 0, pipeBatch)}
	}
	return w
}

// run writes batches until full is closed, then closes the files; on a
// failure it cancels the reader and drains what is still sent.
func (w *recordWriter) run(cancel func()) {
	defer close(w.done)
	for b := range w.full {
		// Each run of rows for one folder goes to its file in one call.
		for i := 0; i < len(b.rows) && w.err == nil; {
			j := i + 1
			for j < len(b.rows) && b.dirs[j] == b.dirs[i] {
				j++
			}
			if w.err = w.parts.writeRows(b.dirs[i], b.rows[i:j]); w.err != nil {
				cancel()
			}
			i = j
		}
		clear(b.rows) // drop references to the rows' strings and slices
		b.dirs, b.rows = b.dirs[:0], b.rows[:0]
		w.free <- b
	}
	if w.err == nil {
		w.err = w.parts.close()
	}
	w.parts.abort()
}

// partitions writes rows into part files, one folder per partition, with at
// most Options.MaxOpen files open.
type partitions[T any] struct {
	o     Options
	stats *Stats
	open  []*partFile[T] // oldest first
	names *partNames
}

// partNames numbers the part files of each folder, for every writer of a
// campaign.
type partNames struct {
	mu    sync.Mutex
	parts map[string]int // folder → parts begun
}

func (n *partNames) next(dir string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.parts == nil {
		n.parts = map[string]int{}
	}
	k := n.parts[dir]
	n.parts[dir] = k + 1
	return k
}

type partFile[T any] struct {
	dir  string
	path string
	fh   *os.File
	bw   *bufio.Writer
	w    *parquet.GenericWriter[T]
	rows []T // rows waiting for one Write call
}

func (p *partitions[T]) write(dir string, row T) error {
	f, err := p.file(dir)
	if err != nil {
		return err
	}
	f.rows = append(f.rows, row)
	if len(f.rows) == cap(f.rows) {
		return f.flushRows()
	}
	return nil
}

// writeRows writes rows into dir's file as they are, without copying them
// into the file's own buffer first.
func (p *partitions[T]) writeRows(dir string, rows []T) error {
	f, err := p.file(dir)
	if err != nil {
		return err
	}
	if err := f.flushRows(); err != nil { // rows given one by one come first
		return err
	}
	if _, err := f.w.Write(rows); err != nil {
		return fmt.Errorf("export: %s: %w", f.path, err)
	}
	return nil
}

// file is dir's open file, opened (and the longest unused one closed)
// when it has none.
func (p *partitions[T]) file(dir string) (*partFile[T], error) {
	var f *partFile[T]
	for i, o := range p.open {
		if o.dir == dir {
			f = o
			if i != len(p.open)-1 { // most recently used last
				copy(p.open[i:], p.open[i+1:])
				p.open[len(p.open)-1] = f
			}
			break
		}
	}
	if f == nil {
		if len(p.open) >= p.o.maxOpen() {
			if err := p.finish(p.open[0]); err != nil {
				return nil, err
			}
			p.open = p.open[1:]
		}
		var err error
		if f, err = p.begin(dir); err != nil {
			return nil, err
		}
		p.open = append(p.open, f)
	}
	return f, nil
}

func (p *partitions[T]) begin(dir string) (*partFile[T], error) {
	n := p.names.next(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "part-"+strconv.Itoa(n)+".parquet")
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(fh, 1<<20)
	w := parquet.NewGenericWriter[T](bw,
		parquet.MaxRowsPerRowGroup(p.o.rowGroup()),
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}),
		parquet.CreatedBy("mitmguard", "", ""),
		// Min/max per page stay in the column index (what readers prune
		// pages by) and per row group in the chunk statistics; the copy
		// in each data page's header is left out: parquet-go computes
		// the bounds a second time for it, ~10% of the export's CPU.
		parquet.DataPageStatistics(false),
	)
	return &partFile[T]{dir: dir, path: path, fh: fh, bw: bw, w: w, rows: make([]T, 0, 1024)}, nil
}

func (f *partFile[T]) flushRows() error {
	if len(f.rows) == 0 {
		return nil
	}
	if _, err := f.w.Write(f.rows); err != nil {
		return fmt.Errorf("export: %s: %w", f.path, err)
	}
	clear(f.rows) // drop references to the rows' strings and slices
	f.rows = f.rows[:0]
	return nil
}

func (p *partitions[T]) finish(f *partFile[T]) error {
	err := f.flushRows()
	if err == nil {
		err = f.w.Close()
	}
	if err == nil {
		err = f.bw.Flush()
	}
	if err == nil {
		err = f.fh.Sync()
	}
	if cerr := f.fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export: %s: %w", f.path, err)
	}
	if fi, err := os.Stat(f.path); err == nil {
		p.stats.Bytes += fi.Size()
	}
	p.stats.Files++
	return nil
}

// close finishes every open file.
func (p *partitions[T]) close() error {
	for len(p.open) > 0 {
		f := p.open[0]
		p.open = p.open[1:]
		if err := p.finish(f); err != nil {
			return err
		}
	}
	return nil
}

// abort closes whatever is still open after a failure.
func (p *partitions[T]) abort() {
	for _, f := range p.open {
		f.fh.Close()
	}
	p.open = nil
}
