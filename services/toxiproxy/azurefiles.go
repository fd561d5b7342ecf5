package toxiproxy

import (
	"sync"
	"time"

	tpclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// AzureFilesType is the custom toxic that models an Azure Files share's
// scale targets on SMB links: a request-rate (IOPS) cap that FAILS the
// request over it, and a bandwidth cap, both shared by every link in one
// pool (Azure throttles the share, not one client). Toxiproxy has no such
// toxic; it is registered with Toxiproxy's registry in the `octoha
// toxiproxy` process (init below).
const AzureFilesType = "azure_files"

// Azure Files defaults for a standard share. Source: azure-docs
// articles/storage/files/storage-files-scale-targets.md (standard file
// share: ~1,000 IOPS and ~60 MiB/s by default; throttled requests fail).
const (
	AzureFilesIOPS      = 1000
	AzureFilesBandwidth = 60 << 20 // bytes per second
	// AzureFilesLatency: "a few milliseconds" from VMs in the region
	// (shared/reference/azure.md).
	AzureFilesLatency = 3 * time.Millisecond
)

// AzureFiles is the azure_files toxic for the upstream (node → share)
// direction of a share link. Each SMB2 message (a NetBIOS session frame)
// is one request. A request beyond the pool's IOPS (one second of burst)
// fails: Azure answers it with an error status; a proxy cannot forge a
// signed SMB2 answer, so the toxic closes the node's connection at that
// request (the request never reaches the share), which fails it on the node (its SMB client redials for the
// next one). Bytes beyond the pool's rate are delayed, not failed.
func AzureFiles(name, pool string, iops int, bytesPerSecond int64) Toxic {
	return Toxic{Name: name, Type: AzureFilesType, Stream: Upstream, Toxicity: 1,
		Attributes: tpclient.Attributes{"pool": pool, "iops": iops, "rate": bytesPerSecond}}
}

func init() { toxics.Register(AzureFilesType, new(azureFilesToxic)) }

type azureFilesToxic struct {
	Pool string `json:"pool"`
	IOPS int64  `json:"iops"`
	Rate int64  `json:"rate"` // bytes per second
}

// smbFraming tracks NetBIOS session frames across chunks of one
// connection: 4 bytes (type, 24-bit length), then the message.
type smbFraming struct {
	left   int64 // bytes of the current message still to come
	hdr    [4]byte
	hdrLen int
}

func (t *azureFilesToxic) NewState() interface{} { return new(smbFraming) }

// messages counts the frames that start in data.
func (f *smbFraming) messages(data []byte) int {
	n := 0
	for len(data) > 0 {
		if f.left > 0 {
			k := min(int64(len(data)), f.left)
			f.left -= k
			data = data[k:]
			continue
		}
		c := copy(f.hdr[f.hdrLen:], data)
		f.hdrLen += c
		data = data[c:]
		if f.hdrLen < 4 {
			break
		}
		f.hdrLen = 0
		f.left = int64(f.hdr[1])<<16 | int64(f.hdr[2])<<8 | int64(f.hdr[3])
		n++
	}
	return n
}

// pool is the shared budget of one share.
type pool struct {
	mu        sync.Mutex
	tokens    float64
	last      time.Time
	nextFree  time.Time // bandwidth: when the pool's link is free again
	throttled int64
}

var (
	poolsMu sync.Mutex
	pools   = map[string]*pool{}
)

func sharedPool(name string) *pool {
	poolsMu.Lock()
	defer poolsMu.Unlock()
	p := pools[name]
	if p == nil {
		p = &pool{last: time.Now(), tokens: -1}
		pools[name] = p
	}
	return p
}

// take spends n requests; false when the pool is over its IOPS.
func (p *pool) take(iops int64, n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.tokens < 0 {
		p.tokens = float64(iops)
	}
	p.tokens = min(float64(iops), p.tokens+now.Sub(p.last).Seconds()*float64(iops))
	p.last = now
	if p.tokens < float64(n) {
		p.throttled++
		return false
	}
	p.tokens -= float64(n)
	return true
}

// delay reserves n bytes of the pool's bandwidth and returns how long to
// wait before sending them.
func (p *pool) delay(rate int64, n int) time.Duration {
	if rate <= 0 {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.nextFree.Before(now) {
		p.nextFree = now
	}
	wait := p.nextFree.Sub(now)
	p.nextFree = p.nextFree.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
	return wait
}

func (t *azureFilesToxic) Pipe(stub *toxics.ToxicStub) {
	f, _ := stub.State.(*smbFraming)
	if f == nil {
		f = new(smbFraming)
	}
	p := sharedPool(t.Pool)
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if n := f.messages(c.Data); n > 0 && t.IOPS > 0 && !p.take(t.IOPS, n) {
				// Over the share's IOPS: the request fails (see AzureFiles).
				stub.Close()
				return
			}
			if d := p.delay(t.Rate, len(c.Data)); d > 0 {
				select {
				case <-time.After(d):
				case <-stub.Interrupt:
					_ = stub.WriteOutput(c, 5*time.Second)
					return
				}
			}
			select {
			case stub.Output <- c:
			case <-stub.Interrupt:
				_ = stub.WriteOutput(c, 5*time.Second)
				return
			}
		}
	}
}
