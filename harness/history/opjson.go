package history

import (
	"encoding/json"
	"strconv"
	"time"
)

// appendOpEntry appends the JSON line of entry{Op: o} (newline included),
// byte for byte what encoding/json writes, without reflection: a batch of
// attack ops spent most of its time there. Ops with task or node lists
// take encoding/json itself.
func appendOpEntry(b []byte, o *Op) ([]byte, error) {
	if o.Tasks != nil || o.Executions != nil || o.NodeList != nil {
		raw, err := json.Marshal(entry{Op: o})
		if err != nil {
			return b, err
		}
		return append(append(b, raw...), '\n'), nil
	}
	var err error
	b = append(b, `{"op":{"seq":`...)
	b = strconv.AppendUint(b, o.Seq, 10)
	b = optString(b, "id", o.ID)
	b = optString(b, "client", o.Client)
	b = appendString(append(b, `,"kind":`...), o.Kind)
	if b, err = appendTime(append(b, `,"start":`...), o.Start); err != nil {
		return b, err
	}
	if b, err = appendTime(append(b, `,"end":`...), o.End); err != nil {
		return b, err
	}
	b = appendString(append(b, `,"outcome":`...), string(o.Outcome))
	b = optInt(b, "status", int64(o.Status))
	b = optString(b, "node", o.Node)
	b = optString(b, "via", o.Via)
	b = optString(b, "url", o.URL)
	b = optInt(b, "bytes", o.Bytes)
	b = optString(b, "packageId", o.PackageID)
	b = optString(b, "version", o.Version)
	b = optString(b, "hash", o.Hash)
	b = optInt(b, "size", o.Size)
	b = optInt(b, "attempt", int64(o.Attempt))
	b = optString(b, "baseVersion", o.BaseVersion)
	b = optInt(b, "deltaBytes", o.DeltaBytes)
	b = optString(b, "error", o.Error)
	b = optString(b, "note", o.Note)
	b = optString(b, "task", o.Task)
	b = optString(b, "cmd", o.Command)
	return append(b, "}}\n"...), nil
}

func optString(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":`...)
	return appendString(b, v)
}

func optInt(b []byte, name string, v int64) []byte {
	if v == 0 {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":`...)
	return strconv.AppendInt(b, v, 10)
}

// appendString appends s as encoding/json quotes it: directly when every
// byte is printable ASCII that needs no escape, else through encoding/json
// (control characters, HTML characters, non-ASCII), so the output is
// always the same.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			raw, _ := json.Marshal(s) // a string always encodes
			return append(b, raw...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// appendTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds), failing as it does for years it cannot write.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		_, err := t.MarshalJSON()
		return b, err
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}
