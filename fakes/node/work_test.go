package node

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/octoha/octoha/octopusapi"
)

func TestWorkHonoursTaskCap(t *testing.T) {
	a := newTestNode(t, nil, func(c *Config) { c.MaxConcurrentTasks = 2 })
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := a.do(t, http.MethodPost, octopusapi.WorkPath("Spaces-1")+"?ms=400&wait=50ms", nil, nil)
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[200] != 2 || got[503] != 1 {
		t.Fatalf("with a cap of 2, three 400ms tasks gave %v; want two 200 and one 503", got)
	}
	// A waiting task gets the slot once one frees.
	start := time.Now()
	var wg2 sync.WaitGroup
	for range 3 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			if resp, body := a.do(t, http.MethodPost, octopusapi.WorkPath("Spaces-1")+"?ms=100&wait=2s", nil, nil); resp.StatusCode != 200 {
				t.Errorf("queued task: %d %s", resp.StatusCode, body)
			}
		}()
	}
	wg2.Wait()
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Fatalf("three 100ms tasks on 2 slots took %v; the third should have waited", d)
	}
	if resp, _ := a.do(t, http.MethodPost, octopusapi.WorkPath("Spaces-1")+"?ms=-1", nil, nil); resp.StatusCode != 400 {
		t.Fatalf("bad ms = %d", resp.StatusCode)
	}
	drain := true
	ub, _ := json.Marshal(octopusapi.NodeUpdate{Id: "OctopusServerNodes-1", IsInMaintenanceMode: &drain})
	a.do(t, http.MethodPut, octopusapi.NodePath("OctopusServerNodes-1"), bytes.NewReader(ub), nil)
	if resp, _ := a.do(t, http.MethodPost, octopusapi.WorkPath("Spaces-1")+"?ms=1", nil, nil); resp.StatusCode != 503 {
		t.Fatalf("draining node took work: %d", resp.StatusCode)
	}
}

func TestDetailsReportActiveUploads(t *testing.T) {
	a := newTestNode(t, nil)
	active := func() float64 {
		_, body := a.do(t, http.MethodGet, octopusapi.NodeDetailsPath("OctopusServerNodes-1"), nil, nil)
		var d map[string]any
		json.Unmarshal(body, &d)
		v, _ := d["ActiveUploads"].(float64)
		return v
	}
	if active() != 0 {
		t.Fatal("idle node reports an active upload")
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.do(t, http.MethodPost, octopusapi.UploadPath("Spaces-1", ""), pr, map[string]string{"Content-Type": mw.FormDataContentType()})
	}()
	fw, _ := mw.CreateFormFile("file", "Slow.1.0.0.zip")
	fw.Write(bytes.Repeat([]byte("x"), 1<<20))
	waitFor(t, 5*time.Second, "upload counted as active", func() bool { return active() == 1 })
	mw.Close()
	pw.Close()
	<-done
	waitFor(t, 5*time.Second, "upload no longer active", func() bool { return active() == 0 })
}
