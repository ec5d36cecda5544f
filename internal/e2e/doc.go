// Package e2e holds end-to-end tests that drive the faultline binary as a
// user would (run a scenario, rebuild its reports) and look at the result in
// a real browser. It has no code of its own.
package e2e
