package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// Report file names.
const (
	HTMLFile     = "index.html"
	JSONFile     = "summary.json"
	MarkdownFile = "summary.md"
)

// ErrBadInput matches (errors.Is) the errors Write returns when the run
// directory is missing, holds no scenarios, or holds a file it cannot
// parse, as opposed to failures to write the reports.
var ErrBadInput = errors.New("bad run directory")

// inputError marks an error about the input without changing its message.
type inputError struct{ err error }

func (e inputError) Error() string        { return e.err.Error() }
func (e inputError) Unwrap() error        { return e.err }
func (e inputError) Is(target error) bool { return target == ErrBadInput }

// Options says where Write puts the reports and how much it draws.
//
// With HTML, JSON and Markdown all empty, Write puts all three reports in
// the run directory (index.html, summary.json, summary.md). As soon as one
// of them is set, Write writes exactly the ones that are set and nothing
// else, so `octoha report --out one.html` never overwrites a summary.json
// an earlier call wrote beside it.
type Options struct {
	// HTML is the path of the HTML report.
	HTML string
	// JSON and Markdown are the paths of summary.json and summary.md.
	JSON     string
	Markdown string
	// MaxPointsPerLane bounds the request timeline's points per lane; zero
	// means DefaultMaxPointsPerLane.
	MaxPointsPerLane int
	// MaxUploadRows bounds the upload plot's rows; zero means
	// DefaultMaxUploadRows.
	MaxUploadRows int
	// Logger receives one line per report written; nil discards.
	Logger *slog.Logger
}

func (o Options) maxPoints() int {
	if o.MaxPointsPerLane > 0 {
		return o.MaxPointsPerLane
	}
	return DefaultMaxPointsPerLane
}

func (o Options) maxUploadRows() int {
	if o.MaxUploadRows > 0 {
		return o.MaxUploadRows
	}
	return DefaultMaxUploadRows
}

// Paths returns where Write puts the reports for dir; an empty path is a
// report Write does not write.
func (o Options) Paths(dir string) (html, js, md string) {
	if o.HTML == "" && o.JSON == "" && o.Markdown == "" {
		return filepath.Join(dir, HTMLFile), filepath.Join(dir, JSONFile), filepath.Join(dir, MarkdownFile)
	}
	return o.HTML, o.JSON, o.Markdown
}

// Write reads a run directory (docs/run-layout.md) or a single scenario
// directory and writes the HTML report, summary.json and summary.md (all
// three in the run directory, or only those opts names). It
// returns the summary it wrote. Missing or corrupt inputs are errors naming
// the file; a history cut off mid-line is reported with a warning.
func Write(ctx context.Context, dir string, opts Options) (*Summary, error) {
	r, err := loadRun(ctx, dir)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, inputError{err}
	}
	sum := summarize(r)
	htmlPath, jsonPath, mdPath := opts.Paths(r.Dir)

	type file struct {
		path string
		b    []byte
	}
	var files []file
	if jsonPath != "" {
		var jb bytes.Buffer
		if err := WriteJSON(&jb, sum); err != nil {
			return nil, err
		}
		files = append(files, file{jsonPath, jb.Bytes()})
	}
	if mdPath != "" {
		var mb bytes.Buffer
		if err := WriteMarkdown(&mb, sum); err != nil {
			return nil, fmt.Errorf("render Markdown summary: %w", err)
		}
		files = append(files, file{mdPath, mb.Bytes()})
	}
	if htmlPath != "" {
		htmlAbs, err := filepath.Abs(htmlPath)
		if err != nil {
			return nil, fmt.Errorf("write HTML report: %w", err)
		}
		var hb bytes.Buffer
		if err := writeHTML(&hb, r, sum, filepath.Dir(htmlAbs), opts); err != nil {
			return nil, err
		}
		files = append(files, file{htmlPath, hb.Bytes()})
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("write reports: %w", err)
		}
		// A last pass for API keys: whatever slipped past the field-level
		// scrubbing must not reach a file that gets attached to CI runs.
		b := apiKeyRE.ReplaceAll(f.b, []byte("API-"+Redacted))
		if err := writeFileAtomic(f.path, b); err != nil {
			return nil, err
		}
		if opts.Logger != nil {
			opts.Logger.Info("report written", "path", f.path, "bytes", len(b))
		}
	}
	return sum, nil
}

// WriteJSON writes the summary as indented JSON.
func WriteJSON(w io.Writer, s *Summary) error { return writeJSONValue(w, s) }

// writeJSONValue writes v as indented JSON, HTML characters unescaped.
func writeJSONValue(w io.Writer, s any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode %T: %w", s, err)
	}
	return nil
}

// ReadSummary reads a summary.json.
func ReadSummary(path string) (*Summary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read summary: %w", err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &s, nil
}

// writeFileAtomic writes b to a temporary file beside path and renames it,
// so a reader (a browser, a CI uploader) never sees half a report.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create report directory: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}
