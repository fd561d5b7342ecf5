package main

import (
	"context"
	"errors"
	"io"
)

// runDown is not built yet; its issue owns it.
func runDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
