package main

import (
	"context"
	"errors"
	"io"
)

// runAttack is not built yet; its issue owns it.
func runAttack(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
