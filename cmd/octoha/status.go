package main

import (
	"context"
	"errors"
	"io"
)

// runStatus is not built yet; its issue owns it.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
