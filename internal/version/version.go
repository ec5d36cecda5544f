// Package version holds faultline's version, set at link time with
// -ldflags "-X github.com/faultline/faultline/internal/version.Version=...".
package version

import "runtime/debug"

// Version is the release version, or "dev".
var Version = "dev"

// String returns the version plus the VCS revision when the build has one.
func String() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}
