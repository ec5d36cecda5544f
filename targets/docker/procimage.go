package docker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/moby/moby/client"
)

// ProcessImageRepo is the repository of the images EnsureProcessImage
// builds; the tag is the first 12 hex digits of a SHA-256 over the image's
// files.
const ProcessImageRepo = "faultline-process"

// EnsureProcessImage returns the tag of an image, built when the daemon
// lacks it, FROM scratch holding faultline (static, at /faultline, as
// EnsureImage's image, and the entry point) and every binary of binaries
// (absolute host paths) at the same absolute path inside the image, each
// with what it needs to run: its ELF program interpreter (PT_INTERP) and
// the shared libraries it needs (DT_NEEDED, recursively), each at the path
// the dynamic loader will look for it (see ELFDeps), plus /tmp (mode 1777).
// Tag: ProcessImageRepo + ":" + the first 12 hex digits of a SHA-256 over
// every file's path, mode and content (the Dockerfile's too), so the same
// inputs give the same tag and a changed binary or library a new one.
//
// Files keep their host permission bits (without set-id bits); libraries
// that are symbolic links on the host are real files in the image, under
// the name the loader looks up. The image has no /etc/ld.so.cache, so the
// loader searches only its built-in directories (Debian's: /lib/TRIPLET,
// /usr/lib/TRIPLET, /lib, /usr/lib), RPATH and RUNPATH: when a library
// was found elsewhere (/lib64, /usr/lib64 or a directory of
// /etc/ld.so.conf), the image sets LD_LIBRARY_PATH to those directories.
//
// Only what the ELF headers name is copied: libraries a program dlopens
// (NSS modules, gconv, plugins) and data files (locales, certificates,
// /etc/passwd, /etc/nsswitch.conf) are not there. Docker mounts /etc/hosts,
// /etc/resolv.conf and /etc/hostname; Go programs, cgo-built ones such as
// etcd included, resolve names there with the pure Go resolver (without
// /etc/nsswitch.conf they read /etc/hosts, then DNS), while lookups of
// users and groups through libc find nothing.
//
// Every binary must be an ELF executable (ELFDeps refuses scripts and
// other files) for the daemon's architecture; a static binary is just
// copied. Nothing is pulled. Builds are serialised with EnsureImage's;
// the image carries the labels of EnsureImage's (LabelFaultline,
// LabelImage). logf, if not nil, hears about a build.
func EnsureProcessImage(ctx context.Context, cli client.APIClient, faultline string, binaries []string, logf func(string, ...any)) (string, error) {
	if err := CheckStatic(faultline); err != nil {
		return "", err
	}
	files, tag, err := processImageFiles(faultline, binaries)
	if err != nil {
		return "", err
	}
	check := append([]string{faultline}, binaries...)
	n := 0
	for _, f := range files {
		if f.Host != "" {
			n++
		}
	}
	what := fmt.Sprintf("holding %s and %d files they need", strings.Join(check, ", "), n-len(check))
	if err := buildIfMissing(ctx, cli, tag, files, check, "name a binary built for that machine", what, logf); err != nil {
		return "", err
	}
	return tag, nil
}

// rootfs is the directory of the build context copied to the image's /.
const rootfs = "rootfs"

// processImageFiles returns the build context of EnsureProcessImage's
// image (a Dockerfile and rootfs/...) and its tag.
func processImageFiles(faultline string, binaries []string) ([]contextFile, string, error) {
	type file struct {
		mode int64
		host string
	}
	img := map[string]file{} // image path -> file
	add := func(at, host, owner string) error {
		st, err := os.Stat(host)
		if err != nil {
			return fmt.Errorf("docker runtime: %s: read %s: %w", owner, host, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("docker runtime: %s: %s is not a regular file", owner, host)
		}
		f := file{mode: int64(st.Mode().Perm()), host: host}
		if old, ok := img[at]; ok && old.host != host {
			return fmt.Errorf("docker runtime: %s: the image would hold both %s and %s at %s", owner, old.host, host, at)
		}
		img[at] = f
		return nil
	}
	if err := add("/faultline", faultline, faultline); err != nil {
		return nil, "", err
	}
	img["/faultline"] = file{mode: 0o755, host: faultline} // as in EnsureImage's image

	var libPath []string // LD_LIBRARY_PATH, in search order
	for _, b := range binaries {
		if !filepath.IsAbs(b) {
			return nil, "", fmt.Errorf("docker runtime: process binary %q is not an absolute path: name it by the absolute path it has on this host, which it will have in the image too", b)
		}
		b = filepath.Clean(b)
		if b == "/faultline" || b == "/tmp" {
			return nil, "", fmt.Errorf("docker runtime: process binary %s would take the place of the image's own %s: name it by another path", b, b)
		}
		deps, err := elfDeps(b)
		if err != nil {
			return nil, "", err
		}
		if err := add(b, b, b); err != nil {
			return nil, "", err
		}
		if img[b].mode&0o111 == 0 {
			return nil, "", fmt.Errorf("docker runtime: process binary %s is not executable (mode %o): chmod +x it", b, img[b].mode)
		}
		for _, d := range deps {
			if err := add(d.path, d.path, b); err != nil {
				return nil, "", err
			}
			if d.needsLibPath && !slices.Contains(libPath, path.Dir(d.path)) {
				libPath = append(libPath, path.Dir(d.path))
			}
		}
	}

	var df strings.Builder
	df.WriteString("FROM scratch\nCOPY " + rootfs + "/ /\n")
	if len(libPath) > 0 {
		fmt.Fprintf(&df, "ENV LD_LIBRARY_PATH=%s\n", strings.Join(libPath, ":"))
	}
	df.WriteString("ENTRYPOINT [\"/faultline\"]\n")

	entries := map[string]contextFile{
		rootfs:          {Name: rootfs, Mode: 0o755, Dir: true},
		rootfs + "/tmp": {Name: rootfs + "/tmp", Mode: 0o1777, Dir: true},
	}
	for at, f := range img {
		name := rootfs + at
		entries[name] = contextFile{Name: name, Mode: f.mode, Host: f.host}
		for d := path.Dir(name); d != rootfs; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = contextFile{Name: d, Mode: 0o755, Dir: true}
			}
		}
	}
	files := []contextFile{{Name: "Dockerfile", Mode: 0o644, Data: []byte(df.String())}}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names) // a directory before what it holds
	for _, n := range names {
		files = append(files, entries[n])
	}

	h := sha256.New()
	for _, f := range files {
		var sum string
		switch {
		case f.Dir:
			sum = "dir"
		case f.Host != "":
			s, err := fileHash(f.Host)
			if err != nil {
				return nil, "", fmt.Errorf("docker runtime: read %s: %w", f.Host, err)
			}
			sum = s
		default:
			s := sha256.Sum256(f.Data)
			sum = hex.EncodeToString(s[:])
		}
		fmt.Fprintf(h, "%s\x00%o\x00%s\n", f.Name, f.Mode, sum)
	}
	return files, ProcessImageRepo + ":" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// ELFDeps returns the files the ELF executable at path needs to run, as
// absolute paths, without duplicates: its program interpreter (PT_INTERP)
// first, then the shared libraries it needs (DT_NEEDED, recursively,
// breadth first as the loader loads them), each under the name the dynamic
// loader looks up, which may be a symbolic link on this host. A static
// executable needs nothing (nil).
//
// It reads ELF headers (debug/elf) and runs nothing. A library name is
// looked up as glibc's loader does without LD_LIBRARY_PATH: in the DT_RPATH
// of the object that needs it and of the objects that needed those (when
// the object has no DT_RUNPATH), its DT_RUNPATH, then the standard
// directories of the binary's machine (x86_64 with Debian multiarch:
// /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64,
// /lib, /usr/lib; aarch64 and the others likewise), then the directories of
// /etc/ld.so.conf and the files it includes. $ORIGIN in a path is the
// directory of the object as named (for the executable, path as given, not
// with symbolic links resolved: where it will be in an image); $LIB is
// lib/TRIPLET, $PLATFORM the machine's name; relative directories are
// skipped. A file of the wrong ELF class or machine is passed over, as the
// loader does; a name the interpreter already answers to (glibc's libc
// needs ld-linux-x86-64.so.2) is satisfied by it.
//
// The error names the binary and what is wrong: a script (#!: name its
// interpreter binary instead, or give a static binary), a file that is not
// an ELF executable, a missing interpreter, or a library found nowhere
// (and which object needs it).
func ELFDeps(path string) ([]string, error) {
	deps, err := elfDeps(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range deps {
		out = append(out, d.path)
	}
	return out, nil
}

// elfDep is a file ELFDeps found.
type elfDep struct {
	path string
	// needsLibPath is true for a library found in a standard directory or
	// one of ld.so.conf (not through RPATH or RUNPATH) that glibc's loader
	// does not search without ld.so.cache (see loaderDirs).
	needsLibPath bool
}

// elfObject is what ELFDeps reads of one ELF file.
type elfObject struct {
	path             string // as named
	class            elf.Class
	machine          elf.Machine
	typ              elf.Type
	interp           string
	soname           string
	needed           []string
	rpath, runpath   []string // expanded
	parent           *elfObject
	hasRunpathHeader bool
}

// readELFObject reads the program interpreter and dynamic section of the
// ELF file at p; a file without a dynamic section needs nothing.
func readELFObject(p string) (*elfObject, error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	o := &elfObject{path: p, class: f.Class, machine: f.Machine, typ: f.Type}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b, err := io.ReadAll(io.LimitReader(prog.Open(), 4096))
			if err != nil {
				return nil, fmt.Errorf("reading its PT_INTERP: %w", err)
			}
			o.interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if o.needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return nil, fmt.Errorf("reading its dynamic section: %w", err)
	}
	if s, _ := f.DynString(elf.DT_SONAME); len(s) > 0 {
		o.soname = s[0]
	}
	rpath, _ := f.DynString(elf.DT_RPATH)
	runpath, _ := f.DynString(elf.DT_RUNPATH)
	o.hasRunpathHeader = len(runpath) > 0
	o.rpath = expandSearchPath(rpath, p, f.Machine)
	o.runpath = expandSearchPath(runpath, p, f.Machine)
	return o, nil
}

// expandSearchPath splits DT_RPATH or DT_RUNPATH values into directories,
// expanding $ORIGIN (the directory of obj as named), $LIB and $PLATFORM
// and dropping relative ones.
func expandSearchPath(values []string, obj string, m elf.Machine) []string {
	origin := filepath.Dir(obj)
	if abs, err := filepath.Abs(origin); err == nil {
		origin = abs
	}
	lib := "lib"
	if t := triplet(m); t != "" {
		lib = "lib/" + t
	}
	r := strings.NewReplacer("${ORIGIN}", origin, "$ORIGIN", origin, "${LIB}", lib, "$LIB", lib,
		"${PLATFORM}", platform(m), "$PLATFORM", platform(m))
	var out []string
	for _, v := range values {
		for _, d := range strings.Split(v, ":") {
			d = r.Replace(d)
			if !strings.HasPrefix(d, "/") {
				continue
			}
			out = append(out, filepath.Clean(d))
		}
	}
	return out
}

// triplet is the Debian multiarch triplet of a machine ("" if unknown).
func triplet(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "x86_64-linux-gnu"
	case elf.EM_AARCH64:
		return "aarch64-linux-gnu"
	case elf.EM_386:
		return "i386-linux-gnu"
	case elf.EM_ARM:
		return "arm-linux-gnueabihf"
	case elf.EM_S390:
		return "s390x-linux-gnu"
	case elf.EM_PPC64:
		return "powerpc64le-linux-gnu"
	case elf.EM_RISCV:
		return "riscv64-linux-gnu"
	}
	return ""
}

// platform is what $PLATFORM expands to on a machine.
func platform(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "x86_64"
	case elf.EM_AARCH64:
		return "aarch64"
	case elf.EM_386:
		return "i686"
	}
	t := triplet(m)
	if i := strings.IndexByte(t, '-'); i > 0 {
		return t[:i]
	}
	return ""
}

// loaderDirs are the directories glibc's loader of a Debian system
// searches on machine m when there is no ld.so.cache.
func loaderDirs(m elf.Machine) []string {
	var dirs []string
	if t := triplet(m); t != "" {
		dirs = append(dirs, "/lib/"+t, "/usr/lib/"+t)
	}
	return append(dirs, "/lib", "/usr/lib")
}

// standardDirs are the directories ELFDeps searches for a library of
// class c and machine m after RPATH and RUNPATH.
func standardDirs(c elf.Class, m elf.Machine) []string {
	var dirs []string
	if t := triplet(m); t != "" {
		dirs = append(dirs, "/lib/"+t, "/usr/lib/"+t)
	}
	if c == elf.ELFCLASS64 {
		dirs = append(dirs, "/lib64", "/usr/lib64")
	}
	return append(dirs, "/lib", "/usr/lib")
}

// ldSoConfDirs returns the directories listed in the ld.so.conf file at
// conf and in the files its include lines name (glob patterns, relative to
// the file's directory), in order; a missing file gives none. Comments (#),
// hwcap lines and libc5-era "=TYPE" suffixes are ignored.
func ldSoConfDirs(conf string) []string {
	var dirs []string
	seen := map[string]bool{}
	var read func(file string, depth int)
	read = func(file string, depth int) {
		if seen[file] || depth > 8 {
			return
		}
		seen[file] = true
		data, err := os.ReadFile(file)
		if err != nil {
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == ':' || r == ',' })
			if len(fields) == 0 {
				continue
			}
			switch fields[0] {
			case "include":
				for _, pat := range fields[1:] {
					if !filepath.IsAbs(pat) {
						pat = filepath.Join(filepath.Dir(file), pat)
					}
					matches, _ := filepath.Glob(pat)
					sort.Strings(matches)
					for _, m := range matches {
						read(m, depth+1)
					}
				}
				continue
			case "hwcap":
				continue
			}
			for _, d := range fields {
				d, _, _ = strings.Cut(d, "=")
				if d = filepath.Clean(d); filepath.IsAbs(d) && !slices.Contains(dirs, d) {
					dirs = append(dirs, d)
				}
			}
		}
	}
	read(conf, 0)
	return dirs
}

// ldSoConf is the file ELFDeps reads its last directories from.
var ldSoConf = "/etc/ld.so.conf"

// elfDeps is ELFDeps with where each library was found.
func elfDeps(bin string) ([]elfDep, error) {
	if err := checkNotScript(bin); err != nil {
		return nil, err
	}
	exe, err := readELFObject(bin)
	if err != nil {
		return nil, fmt.Errorf("docker runtime: %s is not an ELF executable (%v): name a Linux executable (a static one needs nothing else)", bin, err)
	}
	if exe.typ != elf.ET_EXEC && exe.typ != elf.ET_DYN {
		return nil, fmt.Errorf("docker runtime: %s is an ELF %s, not an executable", bin, exe.typ)
	}
	if exe.interp == "" {
		if len(exe.needed) > 0 {
			return nil, fmt.Errorf("docker runtime: %s needs shared libraries (%s) but has no program interpreter: it is a shared library, not an executable", bin, strings.Join(exe.needed, ", "))
		}
		return nil, nil
	}
	if !filepath.IsAbs(exe.interp) {
		return nil, fmt.Errorf("docker runtime: %s names a relative program interpreter %q: name a binary with an absolute one", bin, exe.interp)
	}
	interp, err := readELFObject(exe.interp)
	if err != nil {
		return nil, fmt.Errorf("docker runtime: %s needs the program interpreter %s, which cannot be read as ELF (%v): install it (its C library), or give a static binary", bin, exe.interp, err)
	}
	lds := loaderDirs(exe.machine)
	deps := []elfDep{{path: filepath.Clean(exe.interp)}}
	loaded := map[string]bool{path.Base(exe.interp): true} // names the loader has an object for
	if interp.soname != "" {
		loaded[interp.soname] = true
	}
	have := map[string]bool{deps[0].path: true}
	conf := ldSoConfDirs(ldSoConf)
	std := standardDirs(exe.class, exe.machine)

	queue := []*elfObject{exe}
	for len(queue) > 0 {
		obj := queue[0]
		queue = queue[1:]
		for _, name := range obj.needed {
			if loaded[name] {
				continue
			}
			found, searched, tried := findLibrary(name, obj, exe, std, conf)
			if found == "" {
				by := ""
				if obj != exe {
					by = " (needed by " + obj.path + ")"
				}
				return nil, fmt.Errorf("docker runtime: %s needs the shared library %s%s, which is in none of %s: install it, or give a static binary", bin, name, by, strings.Join(tried, ", "))
			}
			loaded[name] = true
			lib, err := readELFObject(found)
			if err != nil {
				return nil, fmt.Errorf("docker runtime: %s needs %s: read %s: %w", bin, name, found, err)
			}
			lib.parent = obj
			if lib.soname != "" {
				loaded[lib.soname] = true
			}
			if !have[found] {
				have[found] = true
				deps = append(deps, elfDep{path: found, needsLibPath: searched && !slices.Contains(lds, filepath.Dir(found))})
				queue = append(queue, lib)
			}
		}
	}
	return deps, nil
}

// findLibrary looks up the DT_NEEDED name of obj as ELFDeps says; searched
// is true when it was found in std or conf, tried lists where it looked.
func findLibrary(name string, obj, exe *elfObject, std, conf []string) (found string, searched bool, tried []string) {
	if strings.Contains(name, "/") {
		if filepath.IsAbs(name) && compatible(name, exe) {
			return filepath.Clean(name), false, nil
		}
		return "", false, []string{name}
	}
	var dirs []string
	if !obj.hasRunpathHeader {
		for o := obj; o != nil; o = o.parent {
			if !o.hasRunpathHeader {
				dirs = append(dirs, o.rpath...)
			}
		}
	}
	dirs = append(dirs, obj.runpath...)
	nPath := len(dirs)
	dirs = append(dirs, std...)
	dirs = append(dirs, conf...)
	seen := map[string]bool{}
	for i, d := range dirs {
		if seen[d] {
			continue
		}
		seen[d] = true
		tried = append(tried, d)
		p := filepath.Join(d, name)
		if compatible(p, exe) {
			return p, i >= nPath, tried
		}
	}
	return "", false, tried
}

// compatible reports whether p is an ELF file of exe's class and machine
// (symbolic links followed).
func compatible(p string, exe *elfObject) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Class == exe.class && f.Machine == exe.machine
}

// checkNotScript refuses a file that starts with #!.
func checkNotScript(bin string) error {
	f, err := os.Open(bin)
	if err != nil {
		return fmt.Errorf("docker runtime: read %s: %w", bin, err)
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 256)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("docker runtime: read %s: %w", bin, err)
	}
	if strings.HasPrefix(line, "#!") {
		interp := strings.Fields(strings.TrimPrefix(line, "#!"))
		name := "its interpreter binary"
		if len(interp) > 0 {
			name += " (" + interp[0] + ")"
		}
		return fmt.Errorf("docker runtime: %s is a script (%s), not a binary: name %s instead, or give a static binary",
			bin, strings.TrimSpace(line), name)
	}
	return nil
}
