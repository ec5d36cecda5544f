package docker

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ImageRepo is the repository of the images EnsureImage builds; the tag is
// the first 12 hex digits of the binary's SHA-256.
const ImageRepo = "faultline"

// CheckStatic returns nil if path is an ELF executable without a program
// interpreter (statically linked), which is what a FROM scratch image can
// run, and otherwise an error that says how to build one.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("docker runtime: %s is not an ELF executable (%v): the node image needs a static Linux faultline binary; build one with CGO_ENABLED=0 GOOS=linux go build ./cmd/faultline", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("docker runtime: %s is an ELF %s, not an executable: build faultline with CGO_ENABLED=0 GOOS=linux go build ./cmd/faultline", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(io.LimitReader(p.Open(), 256))
			return fmt.Errorf("docker runtime: %s is dynamically linked (interpreter %s), so it cannot run in the FROM scratch node image: build it with CGO_ENABLED=0 go build ./cmd/faultline",
				path, strings.TrimRight(string(interp), "\x00"))
		}
	}
	return nil
}

// elfMachine returns the ELF machine of path.
func elfMachine(path string) (elf.Machine, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Machine, nil
}

// daemonMachine maps a Docker daemon's architecture to an ELF machine; ok
// is false for an architecture this check does not know.
func daemonMachine(arch string) (m elf.Machine, ok bool) {
	switch arch {
	case "x86_64", "amd64":
		return elf.EM_X86_64, true
	case "aarch64", "arm64":
		return elf.EM_AARCH64, true
	case "i386", "i686", "386":
		return elf.EM_386, true
	case "armv7l", "armv6l", "arm":
		return elf.EM_ARM, true
	case "s390x":
		return elf.EM_S390, true
	case "ppc64le":
		return elf.EM_PPC64, true
	case "riscv64":
		return elf.EM_RISCV, true
	}
	return 0, false
}

var hashCache struct {
	mu sync.Mutex
	m  map[string]string // path|size|mtime -> hex sha256
}

// fileHash returns the hex SHA-256 of the file, cached per path, size and
// modification time.
func fileHash(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	key := fmt.Sprintf("%s|%d|%d", path, st.Size(), st.ModTime().UnixNano())
	hashCache.mu.Lock()
	if h, ok := hashCache.m[key]; ok {
		hashCache.mu.Unlock()
		return h, nil
	}
	hashCache.mu.Unlock()
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	hashCache.mu.Lock()
	if hashCache.m == nil {
		hashCache.m = map[string]string{}
	}
	hashCache.m[key] = sum
	hashCache.mu.Unlock()
	return sum, nil
}

// buildMu serialises image builds in this process (two runs of one binary
// build its image once).
var buildMu sync.Mutex

// EnsureImage returns the tag of the node image for binary,
// ImageRepo:<sha256[:12]>, building it when the daemon does not have it:
//
//	FROM scratch
//	COPY faultline /faultline
//	ENTRYPOINT ["/faultline"]
//
// The binary must be a static executable for the daemon's architecture
// (see CheckStatic). Nothing is pulled. logf, if not nil, hears about a
// build.
func EnsureImage(ctx context.Context, cli client.APIClient, binary string, logf func(string, ...any)) (string, error) {
	return ensureImage(ctx, cli, binary, ImageRepo, "faultline", logf)
}

// ensureImage builds repo:<hash12> holding binary as /name, the entry point.
func ensureImage(ctx context.Context, cli client.APIClient, binary, repo, name string, logf func(string, ...any)) (string, error) {
	if err := CheckStatic(binary); err != nil {
		return "", err
	}
	sum, err := fileHash(binary)
	if err != nil {
		return "", fmt.Errorf("docker runtime: read %s: %w", binary, err)
	}
	tag := repo + ":" + sum[:12]
	files := []contextFile{
		{Name: "Dockerfile", Mode: 0o644, Data: []byte(fmt.Sprintf("FROM scratch\nCOPY %s /%s\nENTRYPOINT [\"/%s\"]\n", name, name, name))},
		{Name: name, Mode: 0o755, Host: binary},
	}
	if err := buildIfMissing(ctx, cli, tag, files, []string{binary}, "build it with GOARCH for that machine (CGO_ENABLED=0)", "from "+binary, logf); err != nil {
		return "", err
	}
	return tag, nil
}

// buildIfMissing builds tag from the build context files unless the daemon
// has it already, labelled LabelFaultline and LabelImage, holding buildMu.
// Before a build, every binary must be an ELF file for the daemon's
// architecture (when both are known); hint says what to do otherwise.
// what completes the log line of a build ("building image TAG what").
func buildIfMissing(ctx context.Context, cli client.APIClient, tag string, files []contextFile, binaries []string, hint, what string, logf func(string, ...any)) error {
	buildMu.Lock()
	defer buildMu.Unlock()
	if _, err := cli.ImageInspect(ctx, tag); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker runtime: inspect image %s: %w", tag, err)
	}
	var daemonArch string
	var want elf.Machine
	known := false
	for _, b := range binaries {
		m, err := elfMachine(b)
		if err != nil {
			continue
		}
		if daemonArch == "" {
			info, err := cli.Info(ctx, client.InfoOptions{})
			if err != nil {
				break
			}
			daemonArch = info.Info.Architecture
			want, known = daemonMachine(daemonArch)
		}
		if known && want != m {
			return fmt.Errorf("docker runtime: %s is built for %s but the Docker daemon runs %s: %s", b, m, daemonArch, hint)
		}
	}
	if logf != nil {
		logf("docker: building image %s %s", tag, what)
	}
	t0 := time.Now()
	for _, f := range files {
		if f.Host != "" {
			if _, err := os.Stat(f.Host); err != nil {
				return fmt.Errorf("docker runtime: read %s: %w", f.Host, err)
			}
		}
	}
	buildCtx := tarContext(files)
	defer buildCtx.Close()
	res, err := cli.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
		Tags:        []string{tag},
		Remove:      true,
		ForceRemove: true,
		Labels:      map[string]string{LabelFaultline: "1", LabelImage: "1"},
	})
	if err != nil {
		return fmt.Errorf("docker runtime: build image %s: %w", tag, err)
	}
	defer res.Body.Close()
	if err := readBuildStream(res.Body); err != nil {
		return fmt.Errorf("docker runtime: build image %s: %w", tag, err)
	}
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		return fmt.Errorf("docker runtime: image %s is missing after its build: %w", tag, err)
	}
	if logf != nil {
		logf("docker: built image %s in %s", tag, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// contextFile is one entry of a build context: Name is its slash-separated
// path in the context, Mode its permission bits (with the sticky bit,
// 0o1000, if wanted). A directory has Dir set; a file holds Data, or, when
// Data is nil, the content of the host file Host (symbolic links followed).
type contextFile struct {
	Name string
	Mode int64
	Dir  bool
	Data []byte
	Host string
}

// tarContext returns a tar stream of files, in their order, written by a
// goroutine as the stream is read. A host file that cannot be read, or
// changes size while it is, fails the stream's Read with that error. Close
// the stream when done with it: that stops the goroutine.
func tarContext(files []contextFile) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(pw, files)) }()
	return pr
}

// writeContext writes files to w as a tar archive (owned by root, dated
// 1970, so that the same files give the same bytes).
func writeContext(w io.Writer, files []contextFile) error {
	tw := tar.NewWriter(w)
	now := time.Unix(0, 0)
	for _, e := range files {
		if e.Dir {
			if err := tw.WriteHeader(&tar.Header{Name: strings.TrimSuffix(e.Name, "/") + "/", Mode: e.Mode, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
				return err
			}
			continue
		}
		if e.Data != nil || e.Host == "" {
			if err := tw.WriteHeader(&tar.Header{Name: e.Name, Mode: e.Mode, Size: int64(len(e.Data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := tw.Write(e.Data); err != nil {
				return err
			}
			continue
		}
		if err := writeHostFile(tw, e, now); err != nil {
			return err
		}
	}
	return tw.Close()
}

// writeHostFile writes the entry of host file e.Host to tw.
func writeHostFile(tw *tar.Writer, e contextFile, now time.Time) error {
	f, err := os.Open(e.Host)
	if err != nil {
		return fmt.Errorf("docker runtime: read %s: %w", e.Host, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("docker runtime: read %s: %w", e.Host, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("docker runtime: %s is not a regular file", e.Host)
	}
	if err := tw.WriteHeader(&tar.Header{Name: e.Name, Mode: e.Mode, Size: st.Size(), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if n, err := io.CopyN(tw, f, st.Size()); err != nil {
		return fmt.Errorf("docker runtime: read %s (%d of %d bytes): %w", e.Host, n, st.Size(), err)
	}
	return nil
}

// readBuildStream reads the daemon's JSON build messages to the end and
// returns the error one of them reports.
func readBuildStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	var last string
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading the build output: %w (last message: %s)", err, last)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		if s := strings.TrimSpace(m.Stream); s != "" {
			last = s
		}
	}
}
