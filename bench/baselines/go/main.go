// pulse-baseline: the scan pulse does, written as a Go programmer would,
// with the standard library only (bench/baselines/README.md).
//
//	pulse-baseline -targets FILE [-workers 50] [-timeout 5s] [-grace 2s] [-shape pool|semaphore]
//
// Bounded fan-out in one of two shapes: `pool`, N worker goroutines reading
// targets from a channel; `semaphore`, a goroutine per target, at most N at
// once through a buffered channel used as a semaphore (errgroup.SetLimit's
// shape, without x/sync). Every probe has an absolute deadline
// (context.WithTimeout). One JSON line per result, in completion order, from
// one writer goroutine. SIGINT/SIGTERM: no new probe starts; in-flight ones
// get until the grace period ends, then their context is cancelled; targets
// never started are reported `cancelled`; exit 130.
//
// Exit codes: 0 all up, 1 some down, 2 bad input, 130 interrupted.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	targetsFile := flag.String("targets", "", "targets file (pulse's format)")
	workers := flag.Int("workers", 50, "probes in flight at most")
	timeout := flag.Duration("timeout", 5*time.Second, "probe deadline")
	grace := flag.Duration("grace", 2*time.Second, "after SIGINT, how long in-flight probes may go on")
	shape := flag.String("shape", "pool", "pool or semaphore")
	flag.Parse()
	if *targetsFile == "" || *workers < 1 || (*shape != "pool" && *shape != "semaphore") {
		fmt.Fprintln(os.Stderr, "pulse-baseline: -targets FILE is required; -workers >= 1; -shape pool|semaphore")
		os.Exit(2)
	}
	targets, errs := ReadTargets(*targetsFile)
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(os.Stderr, e)
		}
		fmt.Fprintf(os.Stderr, "pulse-baseline: %d bad target line(s); nothing was probed\n", len(errs))
		os.Exit(2)
	}
	prober := NewProber(*targetsFile)
	for i := range targets {
		if targets[i].Kind == "http" {
			if _, err := prober.client(&targets[i]); err != nil {
				fmt.Fprintf(os.Stderr, "%s:%d:1: %v\n", *targetsFile, targets[i].Line, err)
				os.Exit(2)
			}
		}
	}

	// stop: the signal arrived (no new probes). probes: the parent of every
	// probe's context, cancelled when the grace period ends.
	stop, stopped := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopped()
	probes, cancelProbes := context.WithCancel(context.Background())
	defer cancelProbes()
	go func() {
		<-stop.Done()
		select {
		case <-time.After(*grace):
		case <-probes.Done():
		}
		cancelProbes()
	}()

	results := make(chan Result, *workers)
	probe := func(t *Target) (r Result) {
		limit := *timeout
		if t.Timeout > 0 {
			limit = t.Timeout
		}
		ctx, cancel := context.WithTimeout(probes, limit)
		defer cancel()
		start := time.Now()
		// A panic in one probe is that probe's result, not the scan's end.
		defer func() {
			if p := recover(); p != nil {
				r = Result{t.Text, t.Line, false, millis(time.Since(start)), nil,
					fail("panicked", "probe panicked: %v", p)}
			}
		}()
		status, perr := prober.Probe(ctx, t)
		return Result{t.Text, t.Line, perr == nil, millis(time.Since(start)), status, perr}
	}
	notStarted := func(t *Target) Result {
		return Result{t.Text, t.Line, false, 0, nil,
			fail("cancelled", "scan interrupted before this probe started")}
	}

	go func() {
		switch *shape {
		case "pool":
			runPool(stop, targets, *workers, probe, notStarted, results)
		default:
			runSemaphore(stop, targets, *workers, probe, notStarted, results)
		}
		close(results)
	}()

	// The one writer: results in completion order, one JSON line each.
	out := json.NewEncoder(os.Stdout)
	down := 0
	for r := range results {
		if !r.Success {
			down++
		}
		if err := out.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "pulse-baseline: writing results:", err)
			os.Exit(3)
		}
	}
	switch {
	case stop.Err() != nil:
		os.Exit(130)
	case down > 0:
		os.Exit(1)
	}
}

// runPool: N workers take targets from one unbuffered channel; the feeder
// stops at the signal and reports the rest as never started.
func runPool(stop context.Context, targets []Target, workers int,
	probe, notStarted func(*Target) Result, results chan<- Result) {
	jobs := make(chan *Target)
	var wg sync.WaitGroup
	for w := 0; w < workers && w < len(targets); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range jobs {
				if stop.Err() != nil { // handed over as the signal came
					results <- notStarted(t)
					continue
				}
				results <- probe(t)
			}
		}()
	}
	for i := range targets {
		select {
		case jobs <- &targets[i]:
		case <-stop.Done():
			results <- notStarted(&targets[i])
		}
	}
	close(jobs)
	wg.Wait()
}

// runSemaphore: a goroutine per target, at most N at once: a send on the
// buffered channel takes a slot, a receive gives it back.
func runSemaphore(stop context.Context, targets []Target, workers int,
	probe, notStarted func(*Target) Result, results chan<- Result) {
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i := range targets {
		t := &targets[i]
		select {
		case sem <- struct{}{}:
		case <-stop.Done():
			results <- notStarted(t)
			continue
		}
		if stop.Err() != nil { // both were ready: the signal wins
			<-sem
			results <- notStarted(t)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results <- probe(t)
		}()
	}
	wg.Wait()
}
