package docker

import (
	"archive/tar"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/testenv"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// etcdPath is Debian's etcd 3.4 (package etcd-server), dynamically linked.
const etcdPath = "/usr/bin/etcd"

// requireFile fails the test under CI=true when p is missing, and skips it
// elsewhere, saying why.
func requireFile(t *testing.T, p, why string) {
	t.Helper()
	testenv.File(t, p, why)
}

// requireGCC is requireFile for gcc, which builds the dynamic C programs.
func requireGCC(t *testing.T) {
	t.Helper()
	testenv.Command(t, "gcc", "apt-get install gcc")
}

// gcc compiles the C source src into out with the extra arguments.
func gcc(t *testing.T, out, src string, args ...string) {
	t.Helper()
	c := out + ".c"
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gcc", append([]string{"-o", out, c}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, b)
	}
}

// interpOf reads the PT_INTERP of the ELF file at p.
func interpOf(t *testing.T, p string) string {
	t.Helper()
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b, err := io.ReadAll(prog.Open())
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimRight(string(b), "\x00")
		}
	}
	t.Fatalf("%s has no PT_INTERP", p)
	return ""
}

func TestELFDepsEtcd(t *testing.T) {
	requireFile(t, etcdPath, "Debian's etcd-server package")
	deps, err := ELFDeps(etcdPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ELFDeps(%s) = %q", etcdPath, deps)
	if len(deps) < 2 {
		t.Fatalf("ELFDeps(%s) = %q, want the interpreter and libc", etcdPath, deps)
	}
	if want := interpOf(t, etcdPath); deps[0] != want {
		t.Errorf("first dep %s, want the interpreter %s", deps[0], want)
	}
	if !slices.ContainsFunc(deps, func(d string) bool { return path.Base(d) == "libc.so.6" }) {
		t.Errorf("no libc.so.6 in %q", deps)
	}
	for _, d := range deps {
		if !filepath.IsAbs(d) {
			t.Errorf("%s is not absolute", d)
		}
		if _, err := os.Stat(d); err != nil {
			t.Error(err)
		}
	}
}

func TestELFDepsStatic(t *testing.T) {
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	deps, err := ELFDeps(binPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 0 {
		t.Fatalf("ELFDeps of the static faultline = %q, want none", deps)
	}
}

func TestELFDepsRefusesScript(t *testing.T) {
	p := filepath.Join(t.TempDir(), "run.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh -e\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := ELFDeps(p)
	if err == nil {
		t.Fatal("ELFDeps of a shell script: no error")
	}
	for _, want := range []string{p, "is a script", "interpreter binary (/bin/sh)", "static binary"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := ELFDeps(filepath.Join(t.TempDir(), "nothing")); err == nil {
		t.Error("ELFDeps of a missing file: no error")
	}
	txt := filepath.Join(t.TempDir(), "notes")
	os.WriteFile(txt, []byte("not a program\n"), 0o755)
	if _, err := ELFDeps(txt); err == nil || !strings.Contains(err.Error(), "not an ELF executable") {
		t.Errorf("ELFDeps of a text file: %v, want not an ELF executable", err)
	}
}

// TestELFDepsRunpath builds a program linked against a throwaway library
// found through its RUNPATH (absolute, and $ORIGIN-relative), then deletes
// the library: ELFDeps must name it.
func TestELFDepsRunpath(t *testing.T) {
	requireGCC(t)
	dir := t.TempDir()
	libDir := filepath.Join(dir, "lib")
	os.Mkdir(libDir, 0o755)
	lib := filepath.Join(libDir, "libthrowaway.so")
	gcc(t, lib, "int throwaway(void) { return 42; }\n", "-shared", "-fPIC")
	main := "int throwaway(void);\nint main(void) { return throwaway() == 42 ? 0 : 1; }\n"
	abs := filepath.Join(dir, "abs")
	gcc(t, abs, main, "-L"+libDir, "-lthrowaway", "-Wl,-rpath,"+libDir)
	origin := filepath.Join(dir, "origin")
	gcc(t, origin, main, "-L"+libDir, "-lthrowaway", "-Wl,-rpath,$ORIGIN/lib")
	for _, bin := range []string{abs, origin} {
		deps, err := ELFDeps(bin)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(deps, lib) || !slices.ContainsFunc(deps, func(d string) bool { return path.Base(d) == "libc.so.6" }) {
			t.Errorf("ELFDeps(%s) = %q, want %s and libc.so.6", bin, deps, lib)
		}
	}
	if err := os.Remove(lib); err != nil {
		t.Fatal(err)
	}
	_, err := ELFDeps(abs)
	if err == nil {
		t.Fatal("ELFDeps with the library deleted: no error")
	}
	for _, want := range []string{abs, "libthrowaway.so", libDir, "static binary"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Log(err)
}

func TestLdSoConfDirs(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ld.so.conf")
	os.Mkdir(filepath.Join(dir, "ld.so.conf.d"), 0o755)
	os.WriteFile(conf, []byte("# top\n/opt/first\ninclude ld.so.conf.d/*.conf\ninclude "+conf+"\n/opt/last=libc6\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "ld.so.conf.d", "b.conf"), []byte("/opt/b1 /opt/b2 # two\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "ld.so.conf.d", "a.conf"), []byte("hwcap 0 nosegneg\n/opt/a:/opt/first\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "ld.so.conf.d", "c.txt"), []byte("/opt/ignored\n"), 0o644)
	got := ldSoConfDirs(conf)
	want := []string{"/opt/first", "/opt/a", "/opt/b1", "/opt/b2", "/opt/last"}
	if !slices.Equal(got, want) {
		t.Errorf("ldSoConfDirs = %q, want %q", got, want)
	}
	if got := ldSoConfDirs(filepath.Join(dir, "missing")); len(got) != 0 {
		t.Errorf("missing file: %q", got)
	}
}

// cProgram builds a dynamic C program printing text, linked against libm.
func cProgram(t *testing.T, out, text string) {
	t.Helper()
	src := "#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n" +
		"int main(int argc, char **argv) { double x = argc > 1 ? atof(argv[1]) : 2; printf(\"" + text + " %.6f\\n\", sqrt(x)); return 0; }\n"
	gcc(t, out, src, "-lm")
}

func TestProcessImageTag(t *testing.T) {
	requireGCC(t)
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	prog := filepath.Join(t.TempDir(), "prog")
	cProgram(t, prog, "one")
	files, tag, err := processImageFiles(binPath, []string{prog})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tag, ProcessImageRepo+":") || len(tag) != len(ProcessImageRepo)+1+12 {
		t.Errorf("tag %s, want %s:<12 hex digits>", tag, ProcessImageRepo)
	}
	_, again, err := processImageFiles(binPath, []string{prog})
	if err != nil || again != tag {
		t.Errorf("same inputs: tag %s (%v), then %s", tag, err, again)
	}
	byName := map[string]contextFile{}
	for _, f := range files {
		byName[f.Name] = f
	}
	interp := interpOf(t, prog)
	for _, c := range []struct {
		name string
		mode int64
		dir  bool
	}{{"rootfs/tmp", 0o1777, true}, {"rootfs/faultline", 0o755, false}, {"rootfs" + prog, 0o755, false}, {"rootfs" + interp, -1, false}} {
		f, ok := byName[c.name]
		if !ok {
			t.Errorf("no %s in the context", c.name)
			continue
		}
		if f.Dir != c.dir || (c.mode >= 0 && f.Mode != c.mode) {
			t.Errorf("%s: dir %v mode %o, want dir %v mode %o", c.name, f.Dir, f.Mode, c.dir, c.mode)
		}
	}
	if !slices.ContainsFunc(files, func(f contextFile) bool { return path.Base(f.Name) == "libm.so.6" }) {
		t.Errorf("no libm.so.6 in the context")
	}

	cProgram(t, prog, "two") // same path and size, other content
	_, changed, err := processImageFiles(binPath, []string{prog})
	if err != nil {
		t.Fatal(err)
	}
	if changed == tag {
		t.Errorf("the binary changed but the tag stayed %s", tag)
	}
	if _, _, err := processImageFiles(binPath, []string{"usr/bin/etcd"}); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("a relative binary path: %v, want a refusal", err)
	}
}

// runProcess runs entrypoint in a container of image, waits for it to
// exit and returns its output (stdout and stderr) and exit code; the
// container is removed.
func runProcess(t *testing.T, image string, entrypoint ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:      image,
			Entrypoint: entrypoint,
			Labels:     runLabels(newRunID(t), LabelRole, "probe"),
			WaitingFor: wait.ForExit().WithExitTimeout(30 * time.Second),
		},
		Started: true, Logger: tclog.NewNoopLogger(),
	})
	if ctr != nil {
		defer ctr.Terminate(context.Background())
	}
	if err != nil {
		t.Fatalf("container of %s running %q: %v", image, entrypoint, err)
	}
	st, err := ctr.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ctr.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	return string(out), st.ExitCode
}

// imageFiles returns the type and mode of every path in a container of
// image (created, not started, then removed), from its export.
func imageFiles(t *testing.T, cli client.APIClient, image string) map[string]*tar.Header {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: image, Labels: runLabels(newRunID(t), LabelRole, "probe")}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
	rc, err := cli.ContainerExport(ctx, res.ID, client.ContainerExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out["/"+strings.TrimSuffix(h.Name, "/")] = h
	}
}

// buildProcessImage builds the process image of binaries, checks its tag
// is processImageFiles' and that a second call finds it, removes it after
// the test and returns the tag.
func buildProcessImage(t *testing.T, binaries ...string) string {
	t.Helper()
	cli := dockerClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, want, err := processImageFiles(binPath, binaries)
	if err != nil {
		t.Fatal(err)
	}
	// A tag left by an earlier run would hide the build.
	cli.ImageRemove(ctx, want, client.ImageRemoveOptions{Force: true})
	t0 := time.Now()
	tag, err := EnsureProcessImage(ctx, cli, binPath, binaries, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	built := time.Since(t0)
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	if tag != want {
		t.Errorf("EnsureProcessImage = %s, processImageFiles = %s", tag, want)
	}
	t1 := time.Now()
	if again, err := EnsureProcessImage(ctx, cli, binPath, binaries, nil); err != nil || again != tag {
		t.Errorf("second EnsureProcessImage = %s, %v; want %s", again, err, tag)
	}
	insp, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if insp.Config == nil || insp.Config.Labels[LabelImage] != "1" || insp.Config.Labels[LabelFaultline] != "1" {
		t.Errorf("image labels %v, want %s and %s", insp.Config, LabelFaultline, LabelImage)
	}
	t.Logf("image %s: %.1f MB, built in %s, found again in %s", tag, float64(insp.Size)/1e6, built.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	return tag
}

func TestProcessImageEtcd(t *testing.T) {
	requireDocker(t)
	requireFile(t, etcdPath, "Debian's etcd-server package")
	tag := buildProcessImage(t, etcdPath)
	out, code := runProcess(t, tag, etcdPath, "--version")
	if code != 0 || !strings.Contains(out, "etcd Version: 3.4") {
		t.Fatalf("%s --version in %s: exit %d, output:\n%s", etcdPath, tag, code, out)
	}
	t.Logf("%s --version: %s", etcdPath, strings.SplitN(out, "\n", 2)[0])
	files := imageFiles(t, dockerClient(t), tag)
	interp := interpOf(t, etcdPath)
	for p, want := range map[string]byte{etcdPath: tar.TypeReg, interp: tar.TypeReg, "/faultline": tar.TypeReg, "/tmp": tar.TypeDir} {
		h, ok := files[p]
		if !ok {
			t.Errorf("no %s in the image", p)
			continue
		}
		if h.Typeflag != want {
			t.Errorf("%s: type %c, want %c", p, h.Typeflag, want)
		}
	}
	if h := files["/tmp"]; h != nil && h.Mode&0o7777 != 0o1777 {
		t.Errorf("/tmp: mode %o, want 1777", h.Mode&0o7777)
	}
}

func TestProcessImageCProgram(t *testing.T) {
	requireDocker(t)
	requireGCC(t)
	prog := filepath.Join(t.TempDir(), "sqrt")
	cProgram(t, prog, "sqrt")
	host, err := exec.Command(prog).Output()
	if err != nil {
		t.Fatal(err)
	}
	tag := buildProcessImage(t, prog)
	out, code := runProcess(t, tag, prog)
	if code != 0 || out != "sqrt 1.414214\n" || string(host) != out {
		t.Fatalf("%s in %s: exit %d, output %q (on the host: %q), want \"sqrt 1.414214\\n\"", prog, tag, code, out, host)
	}
}
