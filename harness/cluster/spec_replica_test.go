package cluster

import (
	"strings"
	"testing"
)

func TestDatabaseReplicaSpec(t *testing.T) {
	for _, tc := range []struct {
		kind, replica, provider, wantErr string
	}{
		{DBPostgres, ReplicaSync, ProviderLocal, ""},
		{DBPostgres, ReplicaAsync, ProviderLocal, ""},
		{DBPostgres, "", ProviderLocal, ""},
		{DBPostgres, "semi", ProviderLocal, "want sync or async"},
		{DBSQLite, ReplicaAsync, ProviderLocal, "needs database.kind postgres"},
		{DBPostgres, ReplicaSync, ProviderDocker, "not supported on the docker provider yet"},
	} {
		s := Defaults()
		s.Provider, s.DB.Kind, s.DB.Replica = tc.provider, tc.kind, tc.replica
		_, err := s.Normalize()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s/%s/%s: %v", tc.kind, tc.replica, tc.provider, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s/%s/%s: error %v, want one saying %q", tc.kind, tc.replica, tc.provider, err, tc.wantErr)
		}
	}
}
