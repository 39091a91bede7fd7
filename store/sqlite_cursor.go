package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// liteConn is a connection of the export's own to the database file on
// SQLite's C API (modernc.org/sqlite/lib, the engine under the database/sql
// driver), for reading millions of rows. The driver opens every connection
// SQLITE_OPEN_FULLMUTEX and reads a row by asking each column's type and
// then its value, each call taking the connection's mutex, and boxes every
// value into a fresh driver.Value: on a million records that was most of
// the export's time. Here the connection is opened NOMUTEX (it is used by
// one goroutine), columns are read as the types the schema declares, and
// text and blobs are borrowed views of SQLite's memory, copied only where
// the caller keeps them.
//
// A liteConn is not safe for concurrent use.
type liteConn struct {
	tls *libc.TLS
	// mu guards db against close while interruptOn's goroutine
	// interrupts it.
	mu      sync.Mutex
	db      uintptr
	unwatch func() bool // ends interruptOn's watch, if any
}

// liteBusyMS is how long a statement waits for a lock (a WAL reader
// rarely waits at all: only while another connection recovers the log).
const liteBusyMS = 10_000

// openLite opens the database file at path, which must exist, read-only.
func openLite(path string) (*liteConn, error) {
	c := &liteConn{tls: libc.NewTLS()}
	name, err := c.cstring(path)
	if err != nil {
		c.tls.Close()
		return nil, err
	}
	defer c.free(name)
	pdb, err := c.malloc(int(unsafe.Sizeof(uintptr(0))))
	if err != nil {
		c.tls.Close()
		return nil, err
	}
	defer c.free(pdb)
	// READONLY: a read-write connection would write a file it has not
	// yet checked is the store's (one put at the path since Open): roll
	// back a hot journal when it first reads, checkpoint the log into the
	// file and delete it when it closes last. (A read-only connection
	// still reads a WAL file, creating its -shm if need be.)
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, pdb, sqlite3.SQLITE_OPEN_READONLY|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	c.db = *(*uintptr)(ptr(pdb))
	if rc != sqlite3.SQLITE_OK {
		err := c.err(rc)
		c.close()
		return nil, err
	}
	sqlite3.Xsqlite3_busy_timeout(c.tls, c.db, liteBusyMS)
	return c, nil
}

// ptr turns an address in SQLite's (non-Go) memory into a pointer; the
// memory is libc's, which the Go collector neither moves nor frees.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

func (c *liteConn) malloc(n int) (uintptr, error) {
	p := libc.Xmalloc(c.tls, libc.Tsize_t(n))
	if p == 0 {
		return 0, fmt.Errorf("store: sqlite: cannot allocate %d bytes", n)
	}
	return p, nil
}

func (c *liteConn) free(p uintptr) {
	if p != 0 {
		libc.Xfree(c.tls, p)
	}
}

// cstring copies s, NUL-terminated, into SQLite's memory.
func (c *liteConn) cstring(s string) (uintptr, error) {
	p, err := c.malloc(len(s) + 1)
	if err != nil {
		return 0, err
	}
	b := unsafe.Slice((*byte)(ptr(p)), len(s)+1)
	copy(b, s)
	b[len(s)] = 0
	return p, nil
}

// err is the connection's error for the result code rc.
func (c *liteConn) err(rc int32) error {
	msg := ""
	if c.db != 0 {
		msg = libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	}
	return &liteError{Code: rc, Msg: msg}
}

// liteError is an SQLite failure of the export's connection.
type liteError struct {
	Code int32 // SQLite's (extended) result code
	Msg  string
}

func (e *liteError) Error() string { return fmt.Sprintf("store: sqlite: %s (%d)", e.Msg, e.Code) }

func (c *liteConn) exec(stmt string) error {
	s, err := c.cstring(stmt)
	if err != nil {
		return err
	}
	defer c.free(s)
	if rc := sqlite3.Xsqlite3_exec(c.tls, c.db, s, 0, 0, 0); rc != sqlite3.SQLITE_OK {
		return c.err(rc)
	}
	return nil
}

// pragmaInt reads the integer PRAGMA name (a constant, not user input).
func (c *liteConn) pragmaInt(name string) (int64, error) { return c.queryInt(`PRAGMA ` + name) }

// queryInt runs q and returns the integer of its first row and column.
func (c *liteConn) queryInt(q string) (int64, error) {
	st, err := c.query(q)
	if err != nil {
		return 0, err
	}
	defer st.close()
	if ok, err := st.next(); err != nil || !ok {
		return 0, errors.Join(err, fmt.Errorf("store: sqlite: %s gave no value", q))
	}
	return st.int64(0), nil
}

func (c *liteConn) close() {
	if c.unwatch != nil {
		c.unwatch()
	}
	c.mu.Lock()
	if c.db != 0 {
		sqlite3.Xsqlite3_close_v2(c.tls, c.db)
		c.db = 0
	}
	c.mu.Unlock()
	c.tls.Close()
}

// interruptOn makes the statement running when ctx is done fail at once
// (sqlite3_interrupt, which another thread may call), as database/sql's
// driver does: checking ctx between rows is not enough when one step runs
// for ever (a view in a hostile file, a sort of a huge table).
func (c *liteConn) interruptOn(ctx context.Context) {
	c.unwatch = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.db == 0 {
			return
		}
		tls := libc.NewTLS() // a TLS is one goroutine's
		sqlite3.Xsqlite3_interrupt(tls, c.db)
		tls.Close()
	})
}

// ctxErr is ctx's error in place of err, a failure of a statement that
// interruptOn may have interrupted.
func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// liteStmt is a prepared query of a liteConn.
type liteStmt struct {
	c *liteConn
	p uintptr
}

// query prepares q and binds args (int64 or string) to ?1, ?2, ...
func (c *liteConn) query(q string, args ...any) (*liteStmt, error) {
	zq, err := c.cstring(q)
	if err != nil {
		return nil, err
	}
	defer c.free(zq)
	pp, err := c.malloc(int(unsafe.Sizeof(uintptr(0))))
	if err != nil {
		return nil, err
	}
	defer c.free(pp)
	if rc := sqlite3.Xsqlite3_prepare_v2(c.tls, c.db, zq, -1, pp, 0); rc != sqlite3.SQLITE_OK {
		return nil, c.err(rc)
	}
	s := &liteStmt{c: c, p: *(*uintptr)(ptr(pp))}
	if s.p == 0 {
		return nil, errors.New("store: sqlite: empty statement")
	}
	for i, a := range args {
		var rc int32
		switch a := a.(type) {
		case int64:
			rc = sqlite3.Xsqlite3_bind_int64(c.tls, s.p, int32(i+1), a)
		case string:
			z, err := c.cstring(a)
			if err != nil {
				s.close()
				return nil, err
			}
			// SQLITE_TRANSIENT: SQLite copies the text before this returns.
			rc = sqlite3.Xsqlite3_bind_text(c.tls, s.p, int32(i+1), z, int32(len(a)), sqlite3.SQLITE_TRANSIENT)
			c.free(z)
		default:
			s.close()
			return nil, fmt.Errorf("store: sqlite: cannot bind %T", a)
		}
		if rc != sqlite3.SQLITE_OK {
			err := c.err(rc)
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// bindStatic binds the n bytes at p, which must stay unchanged until the
// statement is reset, as a blob to parameter i.
func (s *liteStmt) bindStatic(i int32, p uintptr, n int) error {
	if rc := sqlite3.Xsqlite3_bind_blob(s.c.tls, s.p, i, p, int32(n), 0); rc != sqlite3.SQLITE_OK {
		return s.c.err(rc)
	}
	return nil
}

// reset makes the statement ready to run again, with its bindings kept.
func (s *liteStmt) reset() error {
	if rc := sqlite3.Xsqlite3_reset(s.c.tls, s.p); rc != sqlite3.SQLITE_OK {
		return s.c.err(rc)
	}
	return nil
}

// next steps to the next row, reporting false at the end.
func (s *liteStmt) next() (bool, error) {
	switch rc := sqlite3.Xsqlite3_step(s.c.tls, s.p); rc {
	case sqlite3.SQLITE_ROW:
		return true, nil
	case sqlite3.SQLITE_DONE:
		return false, nil
	default:
		return false, s.c.err(rc)
	}
}

// bytes is column i of the current row as text or a blob (nil for NULL):
// SQLite's own memory, valid until the next call of next.
func (s *liteStmt) bytes(i int32) []byte {
	p := sqlite3.Xsqlite3_column_blob(s.c.tls, s.p, i)
	n := sqlite3.Xsqlite3_column_bytes(s.c.tls, s.p, i)
	if p == 0 || n <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(ptr(p)), n)
}

// is reports whether column i of the current row is of one of the types
// (SQLITE_INTEGER, ...): its type as stored, unless read since.
func (s *liteStmt) is(i int32, types ...int32) bool {
	t := sqlite3.Xsqlite3_column_type(s.c.tls, s.p, i)
	for _, want := range types {
		if t == want {
			return true
		}
	}
	return false
}

func (s *liteStmt) int64(i int32) int64 { return sqlite3.Xsqlite3_column_int64(s.c.tls, s.p, i) }

func (s *liteStmt) float64(i int32) float64 { return sqlite3.Xsqlite3_column_double(s.c.tls, s.p, i) }

func (s *liteStmt) close() {
	if s.p != 0 {
		sqlite3.Xsqlite3_finalize(s.c.tls, s.p)
		s.p = 0
	}
}

// interner makes strings of one column's values, each distinct value
// once while it keeps recurring: records repeat their vantage, host, SNI,
// outcome, issuer and traits, and an export keeps their strings. It holds
// at most maxInterned values (then starts over), so hostile data cannot
// grow it.
type interner struct {
	last string
	m    map[string]string
	// runs is a column whose values come in runs (the keys vantage and
	// host, in key order): a value past its run does not come back, so
	// only the last one is kept.
	runs bool
}

const maxInterned = 4096

func (in *interner) str(b []byte) string {
	if string(b) == in.last { // compared in place, no copy
		return in.last
	}
	if in.runs {
		in.last = string(b)
		return in.last
	}
	s, ok := in.m[string(b)]
	if !ok {
		if in.m == nil || len(in.m) >= maxInterned {
			in.m = make(map[string]string, 64)
		}
		s = string(b)
		in.m[s] = s
	}
	in.last = s
	return s
}
