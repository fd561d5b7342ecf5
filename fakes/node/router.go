package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/octoha/octoha/octopusapi"
)

// ServeHTTP routes a request. Octopus routes are case-insensitive, and
// space-scoped routes share their first segments with global ones
// (/api/{space}/packages vs /api/octopusservernodes/{id}), so routing is by
// segments rather than through http.ServeMux patterns.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tw := &trackingWriter{ResponseWriter: w}
	defer n.recoverPanic(tw, r)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = n.idleGuard(w, r.Body)
	}
	n.route(tw, r)
}

// idleBody is a request body whose every read must see a byte within
// BodyIdleTimeout: without it a client that announces a body and sends
// less holds the connection and its goroutine forever (even a handler
// that never reads the body waits for it: net/http reads up to 256 KiB
// of what is left so it can reuse the connection). Like the uploads'
// stall guard, which replaces it for uploads, it bounds silence, never
// the length of a request.
type idleBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
}

func (n *Node) idleGuard(w http.ResponseWriter, body io.ReadCloser) io.ReadCloser {
	b := &idleBody{ReadCloser: body, rc: http.NewResponseController(w), timeout: n.cfg.BodyIdleTimeout}
	if err := b.rc.SetReadDeadline(time.Now().Add(b.timeout)); err != nil {
		return body // a connection without deadlines (tests' recorders)
	}
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	k, err := b.ReadCloser.Read(p)
	if err != nil {
		// The body is over: lift the deadline, or net/http's watch for
		// a client hang-up (a read on the idle connection while the
		// handler runs) would hit it and cancel the request.
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return k, err
}

// bareBody returns the body under an idle guard, for the uploads' stall
// guard to take over.
func bareBody(body io.Reader) io.Reader {
	if b, ok := body.(*idleBody); ok {
		return b.ReadCloser
	}
	return body
}

// recoverPanic turns a handler's panic into a 500 (or, if the response had
// begun, an aborted one) and logs it at Error with its stack: net/http's own
// recovery logs through the server's ErrorLog, at Debug, where a bug hides.
func (n *Node) recoverPanic(w *trackingWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
		panic(v)
	}
	n.log.Error("panic serving a request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if w.wrote {
		// Part of a response is out: abort the connection rather than
		// let a truncated body look complete.
		panic(http.ErrAbortHandler)
	}
	writeError(w, http.StatusInternalServerError, "The server failed to handle the request.", nil)
}

// trackingWriter notes whether a response has begun. It passes ReadFrom
// through (downloads use sendfile) and unwraps for http.ResponseController.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

func (t *trackingWriter) ReadFrom(r io.Reader) (int64, error) {
	t.wrote = true
	if rf, ok := t.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{t.ResponseWriter}, r)
}

func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func (n *Node) route(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(octopusapi.HeaderNode, n.cfg.Name)
	seg := splitPath(r.URL.Path)
	if len(seg) == 0 || !strings.EqualFold(seg[0], "api") {
		n.notFound(w, r)
		return
	}
	seg = seg[1:]
	// Anonymous endpoints: the root document and the load balancers' ping.
	if len(seg) == 0 {
		if !allow(w, r, http.MethodGet) {
			return
		}
		n.root(w, r)
		return
	}
	if len(seg) == 2 && strings.EqualFold(seg[0], "octopusservernodes") && strings.EqualFold(seg[1], "ping") {
		if !allow(w, r, http.MethodGet) {
			return
		}
		n.ping(w, r)
		return
	}
	r, ok := n.authorize(w, r)
	if !ok {
		return
	}
	switch strings.ToLower(seg[0]) {
	case "octopusservernodes":
		n.routeNodes(w, r, seg[1:])
	case "spaces":
		n.routeSpaces(w, r, seg[1:])
	case "users":
		n.routeUsers(w, r, seg[1:])
	case "teams":
		n.routeTeams(w, r, seg[1:])
	case "scopeduserroles":
		n.routeScopedRoles(w, r, seg[1:])
	case "tasks":
		n.routeTasks(w, r, "", seg[1:])
	case "packages":
		n.routePackages(w, r, octopusapi.DefaultSpaceID, seg[1:])
	default:
		if octopusapi.ValidSpaceID(canonicalSpace(seg[0])) {
			n.routeSpace(w, r, canonicalSpace(seg[0]), seg[1:])
			return
		}
		n.notFound(w, r)
	}
}

func (n *Node) routeSpaces(w http.ResponseWriter, r *http.Request, seg []string) {
	switch {
	case len(seg) == 0:
		if allow(w, r, http.MethodGet) {
			n.spacesPage(w, r)
		}
	case len(seg) == 1 && strings.EqualFold(seg[0], "all"):
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, []octopusapi.Space{defaultSpace()})
		}
	case octopusapi.ValidSpaceID(canonicalSpace(seg[0])):
		// /api/spaces/{id} is the space resource; /api/spaces/{id}/... is
		// the same as /api/{id}/... (the upload path has both forms).
		if len(seg) == 1 {
			if allow(w, r, http.MethodGet) {
				n.spaceResource(w, r, canonicalSpace(seg[0]))
			}
			return
		}
		n.routeSpace(w, r, canonicalSpace(seg[0]), seg[1:])
	default:
		n.notFound(w, r)
	}
}

// routeSpace handles /api/{spaceId}/...
func (n *Node) routeSpace(w http.ResponseWriter, r *http.Request, space string, seg []string) {
	if space != octopusapi.DefaultSpaceID {
		writeError(w, http.StatusNotFound, "The space "+space+" does not exist.", nil)
		return
	}
	if len(seg) == 0 {
		if allow(w, r, http.MethodGet) {
			n.spaceRoot(w, r, space)
		}
		return
	}
	switch strings.ToLower(seg[0]) {
	case "packages":
		n.routePackages(w, r, space, seg[1:])
	case "tasks":
		n.routeTasks(w, r, space, seg[1:])
	case "feeds":
		n.routeFeeds(w, r, space, seg[1:])
	case "machines":
		n.routeMachines(w, r, space, seg[1:])
	case "octoha":
		if len(seg) == 2 && strings.EqualFold(seg[1], "work") {
			if allow(w, r, http.MethodPost) && n.may(w, r, octopusapi.PermissionTaskCreate, space) {
				n.work(w, r)
			}
			return
		}
		n.notFound(w, r)
	default:
		n.notFound(w, r)
	}
}

func (n *Node) routePackages(w http.ResponseWriter, r *http.Request, space string, seg []string) {
	switch {
	case len(seg) == 0:
		if allow(w, r, http.MethodGet) && n.may(w, r, octopusapi.PermissionFeedView, space) {
			n.listPackages(w, r, space)
		}
	case len(seg) == 1 && strings.EqualFold(seg[0], "raw"):
		if allow(w, r, http.MethodPost) {
			n.upload(w, r, space)
		}
	case len(seg) == 1:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if n.may(w, r, octopusapi.PermissionFeedView, space) {
				n.getPackage(w, r, space, seg[0])
			}
		case http.MethodDelete:
			if n.may(w, r, octopusapi.PermissionBuiltInFeedAdminister, space) {
				n.deletePackage(w, r, space, seg[0])
			}
		default:
			methodNotAllowed(w, "GET, DELETE")
		}
	case len(seg) == 2 && strings.EqualFold(seg[1], "raw"):
		if allow(w, r, http.MethodGet) && n.may(w, r, octopusapi.PermissionBuiltInFeedDownload, space) {
			n.downloadPackage(w, r, space, seg[0])
		}
	case len(seg) == 3 && strings.EqualFold(seg[2], "delta-signature"):
		if allow(w, r, http.MethodGet) && n.mayPush(w, r, space) {
			n.deltaSignature(w, r, space, seg[0], seg[1])
		}
	case len(seg) == 3 && strings.EqualFold(seg[2], "delta"):
		if allow(w, r, http.MethodPost) {
			n.deltaUpload(w, r, space, seg[0], seg[1])
		}
	default:
		n.notFound(w, r)
	}
}

func (n *Node) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "The resource you requested was not found: "+r.URL.Path, nil)
}

// authorize answers 401 unless the request carries a key of the cluster
// or of a user (permissions.go), whom the returned request names.
func (n *Node) authorize(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	key := requestKey(r)
	if key == "" {
		writeError(w, http.StatusUnauthorized, "You must be logged in to perform this action. Please provide a valid API key or log in again.", nil)
		return r, false
	}
	return n.authenticate(w, r, key)
}

// splitPath splits a URL path into non-empty segments.
func splitPath(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, s := range parts {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// canonicalSpace turns "spaces-1" into "Spaces-1".
func canonicalSpace(s string) string {
	if len(s) > 7 && strings.EqualFold(s[:7], "spaces-") {
		return "Spaces-" + s[7:]
	}
	return s
}

func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	methodNotAllowed(w, method)
	return false
}

func methodNotAllowed(w http.ResponseWriter, allowed string) {
	w.Header().Set("Allow", allowed)
	writeError(w, http.StatusMethodNotAllowed, "This endpoint only accepts "+allowed+".", nil)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "Could not encode the response.", []string{err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes Octopus's error body.
func writeError(w http.ResponseWriter, status int, msg string, errs []string) {
	if errs == nil {
		errs = []string{msg}
	}
	b, _ := json.Marshal(octopusapi.Error{ErrorMessage: msg, Errors: errs})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
