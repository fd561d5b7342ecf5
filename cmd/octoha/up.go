package main

import (
	"context"
	"errors"
	"io"
)

// runUp is not built yet; its issue owns it.
func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
