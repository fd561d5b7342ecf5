package main

import (
	"context"
	"errors"
	"io"
)

// runUpload is not built yet; its issue owns it.
func runUpload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
