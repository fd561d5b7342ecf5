package main

import (
	"context"
	"errors"
	"io"
)

// runCheck is not built yet; its issue owns it.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
