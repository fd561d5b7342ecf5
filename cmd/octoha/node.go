package main

import (
	"context"
	"errors"
	"io"
)

// runNode is not built yet; its issue owns it.
func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
