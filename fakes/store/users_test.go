package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// Users, keys, teams and scoped roles: a user's roles come through its
// teams, a revoke removes them, and every team or role change moves the
// permission epoch on. Names are unique per test run (a shared database).
func testUsersAndPermissions(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	name := fmt.Sprintf("%s-alice", f.prefix)
	u, err := f.db.CreateUser(ctx, User{Username: name, DisplayName: "Alice", IsService: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.CreateUser(ctx, User{Username: name}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate username: %v, want ErrExists", err)
	}
	if got, err := f.db.User(ctx, u.Seq); err != nil || got != u {
		t.Fatalf("User(%d) = %+v, %v; want %+v", u.Seq, got, err, u)
	}
	hash := "hash-" + f.prefix
	if _, err := f.db.AddAPIKey(ctx, u.Seq, hash, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, err := f.db.UserByAPIKey(ctx, hash); err != nil || got.Seq != u.Seq {
		t.Fatalf("UserByAPIKey = %+v, %v", got, err)
	}
	if _, err := f.db.UserByAPIKey(ctx, "no-such-"+hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown key: %v, want ErrNotFound", err)
	}
	e0, err := f.db.PermissionEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	team, err := f.db.CreateTeam(ctx, Team{Name: "Publishers " + f.prefix, SpaceID: f.space, Members: []int64{u.Seq}}, "n1")
	if err != nil {
		t.Fatal(err)
	}
	role, err := f.db.AddScopedRole(ctx, ScopedRole{TeamSeq: team.Seq, RoleID: "userroles-packagepublisher", SpaceID: f.space}, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.AddScopedRole(ctx, ScopedRole{TeamSeq: team.Seq + 1000000, RoleID: "x"}, "n1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("role for a missing team: %v, want ErrNotFound", err)
	}
	roles, err := f.db.UserRoles(ctx, u.Seq)
	if err != nil || len(roles) != 1 || roles[0] != role {
		t.Fatalf("UserRoles = %+v, %v; want [%+v]", roles, err, role)
	}
	e1, _ := f.db.PermissionEpoch(ctx)
	if e1 < e0+2 {
		t.Fatalf("epoch %d after two changes from %d", e1, e0)
	}
	if err := f.db.DeleteScopedRole(ctx, role.Seq, "n2"); err != nil {
		t.Fatal(err)
	}
	if err := f.db.DeleteScopedRole(ctx, role.Seq, "n2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second revoke: %v, want ErrNotFound", err)
	}
	if roles, err := f.db.UserRoles(ctx, u.Seq); err != nil || len(roles) != 0 {
		t.Fatalf("roles after revoke = %+v, %v", roles, err)
	}
	if e2, _ := f.db.PermissionEpoch(ctx); e2 <= e1 {
		t.Fatalf("epoch %d did not move on after the revoke (was %d)", e2, e1)
	}
}

func TestUserSchemaPerDialect(t *testing.T) {
	for _, d := range []*dialect{sqliteDialect, postgresDialect, mssqlDialect} {
		s := userSchema(d.kind)
		if len(s) != 7 {
			t.Fatalf("%s: %d tables", d.kind, len(s))
		}
		ins := d.insertSeq("octoha_user", "a, b")
		want := map[Kind]string{
			SQLite:    "INSERT INTO octoha_user (a, b) VALUES (?, ?) RETURNING seq",
			Postgres:  "INSERT INTO octoha_user (a, b) VALUES ($1, $2) RETURNING seq",
			SQLServer: "INSERT INTO octoha_user (a, b) OUTPUT inserted.seq VALUES (@p1, @p2)",
		}[d.kind]
		if ins != want {
			t.Errorf("%s insertSeq = %q, want %q", d.kind, ins, want)
		}
	}
}

func testMachines(t *testing.T, b backend) {
	f := newFixture(t, b)
	ctx := testCtx(t)
	sub := "SQ-" + f.prefix
	m, err := f.db.CreateMachine(ctx, Machine{Name: "T1", Subscription: sub, Thumbprint: "ABC", SpaceID: f.space})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.CreateMachine(ctx, Machine{Name: "T2", Subscription: sub, Thumbprint: "DEF"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate subscription: %v", err)
	}
	if got, err := f.db.MachineBySubscription(ctx, sub); err != nil || got != m {
		t.Fatalf("by subscription: %+v %v", got, err)
	}
	if got, err := f.db.Machine(ctx, m.Seq); err != nil || got != m {
		t.Fatalf("by seq: %+v %v", got, err)
	}
	if _, err := f.db.MachineBySubscription(ctx, "none-"+sub); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}
