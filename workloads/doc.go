// Package workloads drives a concurrent workload against a cluster and
// measures it: op generators (the register/KV workload), pacing (closed loop,
// or open loop at a total rate with k6-style ramps), history recording, and
// latency histograms (HdrHistogram, microseconds).
//
// # Pacing
//
// Closed loop (Config.Rate == 0 and no Stages): Concurrency workers each run
// one op after another, as fast as the system answers. Latency is service
// time.
//
// Open loop (Config.Rate > 0 or Stages): a schedule fixes the intended start
// time of every op. A pacer goroutine sleeps until the next op is due (at
// least 50 µs, so at high rates it wakes once per batch, not once per op),
// computes how many ops have become due since the start, and hands all of
// them to a pool of Concurrency workers through a bounded backlog queue.
// (Go timers have millisecond resolution on Linux, so waits under 1 ms use
// nanosleep there.) Each op keeps its intended start time, so three
// durations are measured per op:
//
//   - latency = completion - intended start (no coordinated omission: an op
//     that waited for a free worker counts its wait),
//   - service time = completion - actual send,
//   - dispatch lag = actual send - intended start.
//
// When every worker is busy, due ops wait in the backlog and their lag grows.
// The backlog holds at most Config.MaxBacklog ops; an op that becomes due
// while it is full is never sent, never recorded in the history, and counted
// in Stats.Missed. Ops still waiting in the backlog when the phase ends are
// counted in Stats.Unsent. So, for an open-loop run,
// Stats.Scheduled == Stats.Ops + Stats.Missed + Stats.Unsent, and a report
// can always say how much of the target load was really offered.
//
// # History
//
// Every op is recorded through the history.Recorder as an invoke event and
// then exactly one completion (ok, fail or info) by the same process. A
// worker whose op ended info continues under a fresh process id, so every
// process is sequential and no process invokes after an info.
//
// # Stopping
//
// A run stops when Config.Duration has elapsed or ctx is cancelled, whichever
// comes first. Ops in flight then are allowed to finish: their context is not
// cancelled by ctx (only Config.OpTimeout and the client's own timeouts bound
// them), and their completions are recorded. Ops that were never started are
// not recorded.
//
// This package must not know how faults are injected, and does not import
// targets: Client is the consumer-side view of targets.Client.
package workloads
