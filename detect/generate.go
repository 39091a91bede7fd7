package detect

//go:generate go run ./internal/genref
