package loaders

import (
	"context"
	"fmt"
	"time"
)

// Offset is a worker's clock offset to the coordinator's (coordinator −
// worker: add it to a worker's time to get the coordinator's), measured
// NTP-style from the round trip with the smallest delay; the true offset
// is within Offset ± Uncertainty.
type Offset struct {
	Offset      time.Duration `json:"offset"`
	Uncertainty time.Duration `json:"uncertainty"`
	RTT         time.Duration `json:"rtt"`
	Samples     int           `json:"samples"`
}

func (o Offset) String() string {
	if o.Samples == 0 {
		return "not measured"
	}
	return fmt.Sprintf("%+.3fms ±%.3fms", ms(o.Offset), ms(o.Uncertainty))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// clockSample is one round trip: the worker's send and receive times and
// the coordinator's time in between.
type clockSample struct {
	sent, server, received time.Time
}

// offsetOf picks the sample with the smallest round trip: queueing delays
// only add to a round trip, so the shortest is the least skewed. The
// coordinator stamps one time per request (receipt = reply), so the
// offset is server − midpoint(sent, received) and the error is at most
// half the round trip.
func offsetOf(samples []clockSample) (Offset, error) {
	best := -1
	var bestRTT time.Duration
	for i, s := range samples {
		rtt := s.received.Sub(s.sent)
		if rtt < 0 {
			continue // the worker's clock stepped backwards mid-sample
		}
		if best < 0 || rtt < bestRTT {
			best, bestRTT = i, rtt
		}
	}
	if best < 0 {
		return Offset{}, fmt.Errorf("no usable clock sample of %d", len(samples))
	}
	s := samples[best]
	mid := s.sent.Add(bestRTT / 2)
	return Offset{Offset: s.server.Sub(mid), Uncertainty: bestRTT / 2, RTT: bestRTT, Samples: len(samples)}, nil
}

// clockSamples is how many round trips a measurement takes.
const clockSamples = 8

// measureOffset takes clockSamples round trips with ask (which returns
// the coordinator's time) and keeps the best. Wall-clock readings are
// used on purpose (Round(0) drops the monotonic reading): the offset is
// between two wall clocks.
func measureOffset(ctx context.Context, ask func(context.Context) (time.Time, error)) (Offset, error) {
	samples := make([]clockSample, 0, clockSamples)
	var lastErr error
	for range clockSamples {
		sent := time.Now().Round(0)
		t, err := ask(ctx)
		received := time.Now().Round(0)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		samples = append(samples, clockSample{sent: sent, server: t, received: received})
	}
	if len(samples) == 0 {
		return Offset{}, fmt.Errorf("measure clock offset: %w", lastErr)
	}
	return offsetOf(samples)
}
