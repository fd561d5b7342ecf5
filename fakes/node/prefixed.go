package node

import (
	"context"
	"io"
	"strings"

	"github.com/octoha/octoha/fakes/blob"
)

// prefixedStore is a directory of another store seen as a store of its
// own: where TaskLogs and Artifacts go when no location of their own is
// configured. Close does not close the underlying store (its owner does).
type prefixedStore struct {
	s   blob.Store
	dir string
}

func prefixed(s blob.Store, dir string) blob.Store { return &prefixedStore{s: s, dir: dir} }

func (p *prefixedStore) name(n string) string {
	if n == "" {
		return p.dir
	}
	return p.dir + "/" + n
}

func (p *prefixedStore) Create(ctx context.Context, n string) (blob.Writer, error) {
	return p.s.Create(ctx, p.name(n))
}

func (p *prefixedStore) Open(ctx context.Context, n string) (io.ReadCloser, error) {
	return p.s.Open(ctx, p.name(n))
}

func (p *prefixedStore) Stat(ctx context.Context, n string) (blob.Info, error) {
	fi, err := p.s.Stat(ctx, p.name(n))
	fi.Name = strings.TrimPrefix(fi.Name, p.dir+"/")
	return fi, err
}

func (p *prefixedStore) Publish(ctx context.Context, from, to string, replace bool) error {
	return p.s.Publish(ctx, p.name(from), p.name(to), replace)
}

func (p *prefixedStore) Remove(ctx context.Context, n string) error {
	return p.s.Remove(ctx, p.name(n))
}

func (p *prefixedStore) Walk(ctx context.Context, dir string) ([]blob.Info, error) {
	files, err := p.s.Walk(ctx, p.name(dir))
	for i := range files {
		files[i].Name = strings.TrimPrefix(files[i].Name, p.dir+"/")
	}
	return files, err
}

func (p *prefixedStore) Ping(ctx context.Context) error { return p.s.Ping(ctx) }
func (p *prefixedStore) Close() error                   { return nil }
func (p *prefixedStore) String() string                 { return p.s.String() + " (" + p.dir + "/)" }
