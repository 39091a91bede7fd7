// Package duckdbtest reads mitmguard's Parquet export back with DuckDB, the
// tool analysts use on it. It lives apart from package export so that only
// its own tests link DuckDB (a large cgo library).
package duckdbtest
