package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Machine is a polling Tentacle registered as a deployment target: it
// polls with the subscription ID in its Uri (poll://SQ-…/) and presents a
// client certificate with the given thumbprint.
type Machine struct {
	Seq          int64
	Name         string
	Subscription string
	Thumbprint   string
	SpaceID      string
}

const machineCols = "seq, name, subscription, thumbprint, space_id"

func scanMachine(r scanner) (Machine, error) {
	var m Machine
	err := r.Scan(&m.Seq, &m.Name, &m.Subscription, &m.Thumbprint, &m.SpaceID)
	return m, err
}

// CreateMachine registers a Tentacle; the error wraps ErrExists when its
// subscription ID is taken.
func (db *DB) CreateMachine(ctx context.Context, m Machine) (Machine, error) {
	if m.Subscription == "" || m.Thumbprint == "" {
		return Machine{}, db.errorf("store: create machine: a subscription ID and a thumbprint are required")
	}
	ctx, cancel := db.op(ctx)
	defer cancel()
	seq, err := db.insert(ctx, db.sql, "octoha_machine", "name, subscription, thumbprint, space_id", m.Name, m.Subscription, m.Thumbprint, m.SpaceID)
	if err != nil {
		return Machine{}, db.errorf("store: create machine %s: %w", m.Name, err)
	}
	m.Seq = seq
	return m, nil
}

// Machine returns a machine by seq; MachineBySubscription by subscription
// ID. Errors wrap ErrNotFound when there is none.
func (db *DB) Machine(ctx context.Context, seq int64) (Machine, error) {
	return db.machine(ctx, "seq = ?", seq)
}

func (db *DB) MachineBySubscription(ctx context.Context, sub string) (Machine, error) {
	return db.machine(ctx, "subscription = ?", sub)
}

func (db *DB) machine(ctx context.Context, where string, arg any) (Machine, error) {
	ctx, cancel := db.op(ctx)
	defer cancel()
	m, err := scanMachine(db.sql.QueryRowContext(ctx, db.d.rebind("SELECT "+machineCols+" FROM octoha_machine WHERE "+where), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("store: machine %v: %w", arg, ErrNotFound)
	}
	if err != nil {
		return m, db.errorf("store: read machine %v: %w", arg, err)
	}
	return m, nil
}
