package store

import (
	"os"
	"testing"
)

// TestSQLServer runs the conformance suite against a real SQL Server named
// by OCTOHA_TEST_MSSQL_DSN (sqlserver://user:pass@host:port?database=db).
// The suite only touches rows with its own keys and deletes them after.
func TestSQLServer(t *testing.T) {
	dsn := os.Getenv("OCTOHA_TEST_MSSQL_DSN")
	if dsn == "" {
		t.Skip("OCTOHA_TEST_MSSQL_DSN not set: no SQL Server reachable here (the docker engine cannot pull mcr.microsoft.com/mssql/server)")
	}
	runSuite(t, backend{name: string(SQLServer), fresh: func(*testing.T) string { return dsn }})
}
