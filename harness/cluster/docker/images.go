package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Environment variables naming the images (docker/README.md).
const (
	EnvImagePrefix   = "OCTOHA_IMAGE_PREFIX"
	EnvImageNode     = "OCTOHA_IMAGE_NODE"
	EnvImageHAProxy  = "OCTOHA_IMAGE_HAPROXY"
	EnvImageSamba    = "OCTOHA_IMAGE_SAMBA"
	EnvImagePostgres = "OCTOHA_IMAGE_POSTGRES"
	EnvImageMSSQL    = "OCTOHA_IMAGE_MSSQL"
)

// DefaultImagePrefix is where `make images` puts the images it builds.
const DefaultImagePrefix = "octoha-local/"

// DefaultMSSQLImage is the official SQL Server image.
const DefaultMSSQLImage = "mcr.microsoft.com/mssql/server:2022-latest"

// Images names every image the provider runs.
type Images struct {
	Node     string // fake Octopus node: ENTRYPOINT octoha node
	HAProxy  string // HAProxy reading /usr/local/etc/haproxy/haproxy.cfg
	Samba    string // octoha Samba: SMB_USER/SMB_PASSWORD, share "octoha"
	Postgres string // the official postgres image's contract
	MSSQL    string // SQL Server; used when present locally or pullable
}

// ImagesFromEnv returns the image names of docker/README.md: each
// OCTOHA_IMAGE_<NAME> when set, else the name `make images` builds under
// OCTOHA_IMAGE_PREFIX (default octoha-local/; an empty prefix is allowed).
func ImagesFromEnv() Images {
	prefix, ok := os.LookupEnv(EnvImagePrefix)
	if !ok {
		prefix = DefaultImagePrefix
	}
	pick := func(env, def string) string {
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			return v
		}
		return def
	}
	return Images{
		Node:     pick(EnvImageNode, prefix+"node:dev"),
		HAProxy:  pick(EnvImageHAProxy, prefix+"haproxy:2.6"),
		Samba:    pick(EnvImageSamba, prefix+"samba:4"),
		Postgres: pick(EnvImagePostgres, prefix+"postgres:15"),
		MSSQL:    pick(EnvImageMSSQL, DefaultMSSQLImage),
	}
}

// withDefaults fills empty names from ImagesFromEnv.
func (im Images) withDefaults() Images {
	d := ImagesFromEnv()
	if im.Node == "" {
		im.Node = d.Node
	}
	if im.HAProxy == "" {
		im.HAProxy = d.HAProxy
	}
	if im.Samba == "" {
		im.Samba = d.Samba
	}
	if im.Postgres == "" {
		im.Postgres = d.Postgres
	}
	if im.MSSQL == "" {
		im.MSSQL = d.MSSQL
	}
	return im
}

// ErrImageMissing is wrapped by errors about an image that is not present
// locally (the provider never pulls the images `make images` builds).
var ErrImageMissing = errors.New("image not found locally")

// Available reports whether the docker provider can run here with the
// images of ImagesFromEnv: the engine answers, and the node, HAProxy and
// Samba images and a database image (SQL Server or PostgreSQL) are present
// locally. The error says what to do; scenarios skip with it.
func Available(ctx context.Context) error {
	return CheckImages(ctx, ImagesFromEnv())
}

// CheckImages is Available for the given images. It only inspects local
// images: it never pulls.
func CheckImages(ctx context.Context, im Images) error {
	im = im.withDefaults()
	e, err := connect(ctx, nil)
	if err != nil {
		return err
	}
	defer e.close()
	var errs []error
	for _, img := range []string{im.Node, im.HAProxy, im.Samba} {
		if err := e.imagePresent(ctx, img); err != nil {
			errs = append(errs, err)
		}
	}
	if e.imagePresent(ctx, im.MSSQL) != nil {
		if err := e.imagePresent(ctx, im.Postgres); err != nil {
			errs = append(errs, fmt.Errorf("no database image: %s is not present and %w", im.MSSQL, err))
		}
	}
	return errors.Join(errs...)
}

// imagePresent inspects an image locally; a missing one is ErrImageMissing
// with what to do about it.
func (e *engine) imagePresent(ctx context.Context, img string) error {
	if _, err := e.cli.ImageInspect(ctx, img); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s: build the local images with `make images` (see docker/README.md), or name one you have with the OCTOHA_IMAGE_* variables", ErrImageMissing, img)
		}
		return fmt.Errorf("inspect image %s: %w", img, err)
	}
	return nil
}

// pullable asks the image's registry whether it has the image, without
// pulling it (the caller bounds the time through ctx).
func (e *engine) pullable(ctx context.Context, img string) error {
	if _, err := e.cli.DistributionInspect(ctx, img, client.DistributionInspectOptions{}); err != nil {
		return fmt.Errorf("registry lookup of %s: %w", img, err)
	}
	return nil
}

// pull pulls an image from its registry, waiting until it is complete.
func (e *engine) pull(ctx context.Context, img string) error {
	resp, err := e.cli.ImagePull(ctx, img, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", img, err)
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return fmt.Errorf("pull %s: %w", img, err)
	}
	return e.imagePresent(ctx, img)
}
