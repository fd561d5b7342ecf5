package lb

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// runtimeCommand sends one command to HAProxy's runtime API on a unix socket
// and returns the reply. Without `prompt`, HAProxy answers one command and
// closes, so the reply is everything up to EOF.
func runtimeCommand(ctx context.Context, socket, cmd string) (string, error) {
	return runtimeCommandAt(ctx, "unix", socket, cmd)
}

// runtimeCommandAt is runtimeCommand on any stream network ("unix", "tcp").
func runtimeCommandAt(ctx context.Context, network, socket, cmd string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, socket)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API %s: %w", socket, err)
	}
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := c.SetDeadline(deadline); err != nil {
		return "", fmt.Errorf("haproxy runtime API %s: %w", socket, err)
	}
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy runtime API %q: send: %w", cmd, err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API %q: read: %w", cmd, err)
	}
	return string(out), nil
}

// parseShowStat turns `show stat` CSV into server states of one backend,
// keyed by server name. Columns are found by header name, so the parser does
// not depend on HAProxy's column order.
func parseShowStat(out, backend string) (map[string]ServerState, error) {
	out = strings.TrimPrefix(strings.TrimLeft(out, " \n"), "# ")
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse haproxy show stat: %w", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("parse haproxy show stat: empty reply")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, need := range []string{"pxname", "svname", "status", "check_status", "check_code"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("parse haproxy show stat: no %q column in header %q", need, strings.Join(recs[0], ","))
		}
	}
	get := func(rec []string, name string) string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	states := map[string]ServerState{}
	for _, rec := range recs[1:] {
		if get(rec, "pxname") != backend {
			continue
		}
		sv := get(rec, "svname")
		if sv == "FRONTEND" || sv == "BACKEND" || sv == "" {
			continue
		}
		status := get(rec, "status")
		check := strings.TrimSpace(strings.TrimPrefix(get(rec, "check_status"), "*"))
		if code := get(rec, "check_code"); code != "" && check != "" {
			check += "/" + code
		}
		detail := "status " + status
		// health runs 0..rise+fall-1; a server starts at rise, so right
		// after start one failed check takes it DOWN.
		if h, r, f := get(rec, "check_health"), get(rec, "check_rise"), get(rec, "check_fall"); h != "" && r != "" && f != "" {
			ri, _ := strconv.Atoi(r)
			fi, _ := strconv.Atoi(f)
			detail += fmt.Sprintf("; health %s/%d", h, ri+fi-1)
		}
		if lc := get(rec, "last_chk"); lc != "" {
			detail += "; last check: " + lc
		}
		states[sv] = ServerState{Name: sv, State: haproxyState(status), Check: check, Detail: detail}
	}
	return states, nil
}

// haproxyState maps HAProxy's status column ("UP", "UP 1/2" = failing but
// not yet down, "DOWN 1/2" = recovering, "NOLB", "DRAIN", "MAINT (via …)",
// "no check") to a State.
func haproxyState(status string) State {
	switch first, _, _ := strings.Cut(status, " "); first {
	case "MAINT":
		return StateMaint
	case "DRAIN":
		return StateDrain
	case "NOLB":
		return StateNOLB
	case "UP":
		return StateUp
	case "DOWN":
		return StateDown
	case "no":
		if status == "no check" {
			return StateUp
		}
	}
	return StateUnknown
}

// haproxyAdminState maps a requested State to `set server … state` words.
func haproxyAdminState(s State) (string, error) {
	switch s {
	case StateUp:
		return "ready", nil
	case StateDrain:
		return "drain", nil
	case StateMaint, StateDown:
		return "maint", nil
	}
	return "", fmt.Errorf("haproxy: cannot set a server to %s (want UP, DRAIN, MAINT or DOWN)", s)
}
