package node

import (
	"context"
	"errors"
	"path"
	"strings"
	"time"

	"github.com/octoha/octoha/fakes/blob"
)

// sweep removes temporary upload files nobody will finish: this node's own
// that no live upload of this process is writing (left by a crash before a
// restart), and other nodes' whose owner has stopped heartbeating (killed,
// paused or gone). A SIGKILLed node therefore leaves no partial file behind
// once any node of the cluster is running.
func (n *Node) sweep(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	files, err := n.cfg.Packages.Walk(sctx, TempDir)
	if err != nil {
		if !errors.Is(err, blob.ErrNotExist) {
			n.log.Debug("cannot list temporary files", "err", err)
		}
		return
	}
	if len(files) == 0 {
		return
	}
	lastSeen := map[string]time.Time{}
	nodesKnown := false
	if rows, err := n.cfg.DB.Nodes(sctx); err == nil {
		nodesKnown = true
		for _, r := range rows {
			lastSeen[r.ID] = r.LastSeen
		}
	}
	now := time.Now()
	for _, f := range files {
		owner, ok := tempOwner(f.Name)
		if n.uploads.has(f.Name) {
			continue
		}
		stale := false
		switch {
		case !ok:
			// Not one of ours by name; leave anything recent alone.
			stale = now.Sub(f.ModTime) > time.Hour
		case owner == n.cfg.ID:
			stale = true
		case nodesKnown:
			seen, known := lastSeen[owner]
			stale = !known || now.Sub(seen) > n.cfg.TempStaleAfter
		}
		if !stale {
			continue
		}
		if err := n.cfg.Packages.Remove(sctx, f.Name); err != nil {
			n.log.Warn("cannot remove abandoned temporary file", "file", f.Name, "err", err)
			continue
		}
		n.log.Info("removed abandoned temporary upload", "file", f.Name, "owner", owner, "bytes", f.Size)
	}
}

// tempOwner returns the node ID encoded in a temporary file's name.
func tempOwner(name string) (string, bool) {
	base := path.Base(name)
	if !strings.HasSuffix(base, ".tmp") {
		return "", false
	}
	i := strings.LastIndexByte(base, '_')
	if i <= 0 {
		return "", false
	}
	return base[:i], true
}
