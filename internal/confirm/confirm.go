// Package confirm asks the person at a terminal before something
// destructive: destructive faults on a real cluster.
package confirm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Terminal returns a confirmation that prints the plan to out and asks
// "Proceed? [y/N]" on in when it is a terminal; with yes it proceeds
// without asking, and without a terminal it refuses. An interrupted ctx
// refuses with its cause.
func Terminal(yes bool, out io.Writer, in *os.File) func(ctx context.Context, plan string) error {
	return func(ctx context.Context, plan string) error {
		fmt.Fprint(out, "\n"+plan)
		if yes {
			fmt.Fprintln(out, "  (--yes: proceeding)")
			return nil
		}
		if st, err := in.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
			return errors.New("destructive faults on a real cluster need confirmation: run on a terminal or pass --yes")
		}
		fmt.Fprint(out, "Proceed? [y/N] ")
		answer := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(in).ReadString('\n')
			answer <- strings.TrimSpace(strings.ToLower(line))
		}()
		select {
		case a := <-answer:
			if a == "y" || a == "yes" {
				return nil
			}
			return errors.New("not confirmed by the operator")
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
