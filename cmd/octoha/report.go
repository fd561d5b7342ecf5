package main

import (
	"context"
	"errors"
	"io"
)

// runReport is not built yet; its issue owns it.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
