package payload

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// HashCacheEnv names the directory of the on-disk hash cache; "off"
// disables it. Default: octoha/payload-sha1 under the user's cache
// directory.
const HashCacheEnv = "OCTOHA_HASH_CACHE"

// hashCacheMin is the smallest package whose hash is cached on disk:
// below it, generating and hashing costs less than a file.
const hashCacheMin = 4 << 20

// generator names the byte stream's definition. Change it whenever New or
// NewGeneration would produce different bytes, so no cached hash outlives
// the content it was computed from.
const generator = "splitmix64-v1"

// hashes is this process's cache: key -> hex SHA-1.
var hashes sync.Map

// key identifies a spec's bytes (not its name: two packages of the same
// seed and size have the same content).
func (s Spec) key() string {
	k := generator + "-" + strconv.FormatInt(s.Seed, 10) + "-" + strconv.FormatInt(s.Size, 10)
	if s.Gen > 0 && s.Change > 0 {
		k += "-" + strconv.Itoa(s.Gen) + "-" + strconv.FormatFloat(s.Change, 'g', -1, 64)
	}
	return k
}

func hashCacheDir() string {
	switch d := os.Getenv(HashCacheEnv); d {
	case "off":
		return ""
	case "":
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(base, "octoha", "payload-sha1")
	default:
		return d
	}
}

// KnownHash returns the SHA-1 of the spec's bytes if this process, or an
// earlier one through the on-disk cache, has computed it; it generates
// nothing. The content is a pure function of the spec, so an uploader that
// knows the hash need not hash the bytes again while it sends them (the
// node still hashes what it received, and the checkers compare).
func KnownHash(s Spec) (string, bool) {
	k := s.key()
	if h, ok := hashes.Load(k); ok {
		return h.(string), true
	}
	if s.Size < hashCacheMin {
		return "", false
	}
	dir := hashCacheDir()
	if dir == "" {
		return "", false
	}
	raw, err := os.ReadFile(filepath.Join(dir, k))
	if err != nil || !validHash(string(raw)) {
		return "", false // absent, or not a hash: compute it again
	}
	hashes.Store(k, string(raw))
	return string(raw), true
}

// RememberHash records the SHA-1 of the spec's bytes, computed from them,
// in this process and (best effort) in the on-disk cache.
func RememberHash(s Spec, hash string) {
	if !validHash(hash) {
		return
	}
	k := s.key()
	if _, loaded := hashes.LoadOrStore(k, hash); loaded || s.Size < hashCacheMin {
		return
	}
	dir := hashCacheDir()
	if dir == "" || os.MkdirAll(dir, 0o755) != nil {
		return
	}
	// Write then rename, so a reader never sees half a hash.
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return
	}
	_, werr := f.WriteString(hash)
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), filepath.Join(dir, k)) != nil {
		os.Remove(f.Name())
	}
}

// CachedHash returns the spec's SHA-1 from the caches, or computes it by
// generating the bytes and remembers it.
func (s Spec) CachedHash() string {
	if h, ok := KnownHash(s); ok {
		return h
	}
	h := s.Hash()
	RememberHash(s, h)
	return h
}

func validHash(h string) bool {
	if len(h) != 40 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}
