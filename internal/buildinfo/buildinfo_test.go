package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name             string
		ldVersion, ldRev string
		bi               *debug.BuildInfo
		want             Build
	}{
		{"no build info at all", "", "", nil,
			Build{Version: "devel", Commit: "unknown"}},
		{"go run or go test: (devel), no vcs", "", "",
			&debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "(devel)"}},
			Build{Version: "devel", Commit: "unknown", Go: "go1.99"}},
		{"plain go build in a dirty checkout", "", "",
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("abc123", "true")},
			Build{Version: "devel", Commit: "abc123", Modified: true}},
		{"go build stamps a pseudo-version from git (Go 1.24+)", "", "",
			&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261125192338-350f94e54b94+dirty"}, Settings: vcs("350f94e54b94", "true")},
			Build{Version: "v0.0.0-20261125192338-350f94e54b94+dirty", Commit: "350f94e54b94", Modified: true}},
		{"go install @version", "", "",
			&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}},
			Build{Version: "v1.2.3", Commit: "unknown"}},
		{"make build: link-time values win", "v1.2.3-4-gabc1234-dirty", "abc1234full",
			&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-2026-abc1234+dirty"}, Settings: vcs("other", "false")},
			Build{Version: "v1.2.3-4-gabc1234-dirty", Commit: "abc1234full"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Resolve(tc.ldVersion, tc.ldRev, tc.bi)
			tc.want.OS, tc.want.Arch = runtime.GOOS, runtime.GOARCH
			if tc.want.Go == "" {
				tc.want.Go = runtime.Version()
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
