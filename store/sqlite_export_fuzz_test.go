package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/store"
)

// FuzzStreamRowsHostile stores a record and its control of fuzzed values
// and types, as a crafted file may hold them, and reads them back through
// the export's own C-API reader: it must not crash, and what it yields is
// what Records yields; otherwise it refuses the row.
func FuzzStreamRowsHostile(f *testing.F) {
	f.Add("kz", "10.0.0.1:443", "a.com", uint8(0), int64(1700000000000), []byte("1700"), []byte{}, []byte{}, 1.5)
	f.Add("kz", "h", "s", uint8(0x3f), int64(-1), []byte("7x"), make([]byte, 33), make([]byte, 64), 0.0)
	f.Add("k\x00z", "\xff", "", uint8(0x15), int64(1<<62), []byte{}, make([]byte, 32), make([]byte, 31), 1e300)
	ctx := context.Background()
	path := filepath.Join(f.TempDir(), "m.db")
	st, err := store.Open(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	c := &store.Campaign{ID: "a", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		f.Fatal(err)
	}
	db := rawDB(f, path)
	f.Fuzz(func(t *testing.T, vantage, host, sni string, kinds uint8, n int64, text, chain, ctlChain []byte, ms float64) {
		// Each pair of bits of kinds picks the type of one value.
		pick := func(shift uint) any {
			switch kinds >> shift & 3 {
			case 0:
				return n
			case 1:
				return string(text)
			case 2:
				return text // a blob
			}
			return ms
		}
		blobOr := func(shift uint, b []byte) any {
			if kinds>>shift&1 == 1 {
				return string(b)
			}
			return b
		}
		exec(t, db, `DELETE FROM records; DELETE FROM controls`)
		exec(t, db, `INSERT INTO controls VALUES((SELECT n FROM campaigns), ?, ?, 'c', 'ok', ?)`, vantage, host, blobOr(6, ctlChain))
		exec(t, db, `INSERT INTO records VALUES((SELECT n FROM campaigns), ?, ?, ?, 'ok', ?, ?, ?, NULL, NULL, NULL, ?)`,
			vantage, host, sni, pick(0), blobOr(7, chain), pick(2), pick(4))
		var got, want []pair
		err := store.StreamRows(ctx, st, c, func(row *store.Row) error {
			if len(row.Chain)%32 != 0 || len(row.ControlChain)%32 != 0 {
				t.Fatalf("a chain of %d bytes, a control chain of %d", len(row.Chain), len(row.ControlChain))
			}
			r, ctl := row.Record()
			got = append(got, pair{r, ctl})
			return nil
		})
		var me *store.MalformedError
		if errors.As(err, &me) {
			return
		}
		if err != nil {
			t.Fatalf("StreamRows: %v", err)
		}
		if err := st.Records(ctx, c, func(r measure.Record, ctl measure.Control) error {
			want = append(want, pair{r, ctl})
			return nil
		}); err != nil {
			t.Fatalf("StreamRows read what Records refuses (%v): %+v", err, got)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("StreamRows %+v\nRecords    %+v", got, want)
		}
	})
}
