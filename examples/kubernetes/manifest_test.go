// Package kubernetes tests the manifests of examples/kubernetes against the
// Kubernetes API types, without a cluster. It is a module of its own so
// that the Kubernetes modules stay out of faultline's go.mod and binary;
// the root module's suite runs it (internal/e2e TestKubernetesManifests).
package kubernetes

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// manifests are the files of the example, each one or more documents.
var manifests = []string{"generators.yaml", "check.yaml"}

// completionIndex is the annotation the Job controller sets on each pod
// of an Indexed Job: its completion index.
const completionIndex = "metadata.annotations['batch.kubernetes.io/job-completion-index']"

type objects struct {
	configMaps map[string]*corev1.ConfigMap
	claims     map[string]*corev1.PersistentVolumeClaim
	jobs       map[string]*batchv1.Job
}

// decode reads every document of the manifests strictly: an unknown or
// duplicate field, a wrong type, or a kind the example does not use is an
// error naming the file and the document.
func decode(t *testing.T) objects {
	t.Helper()
	o := objects{map[string]*corev1.ConfigMap{}, map[string]*corev1.PersistentVolumeClaim{}, map[string]*batchv1.Job{}}
	sep := regexp.MustCompile(`(?m)^---[ \t]*$`)
	for _, file := range manifests {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range sep.Split(string(b), -1) {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s, document %d: %v", file, i+1, err)
			}
			var obj interface{ GetName() string }
			want := "v1"
			switch meta.Kind {
			case "ConfigMap":
				obj = &corev1.ConfigMap{}
			case "PersistentVolumeClaim":
				obj = &corev1.PersistentVolumeClaim{}
			case "Job":
				obj, want = &batchv1.Job{}, "batch/v1"
			default:
				t.Fatalf("%s, document %d: kind %q is not one this example uses", file, i+1, meta.Kind)
			}
			if meta.APIVersion != want {
				t.Errorf("%s, document %d: %s has apiVersion %q, want %q", file, i+1, meta.Kind, meta.APIVersion, want)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s, document %d (%s): %v", file, i+1, meta.Kind, err)
			}
			if obj.GetName() == "" {
				t.Errorf("%s, document %d: a %s without a name", file, i+1, meta.Kind)
			}
			switch v := obj.(type) {
			case *corev1.ConfigMap:
				o.configMaps[v.Name] = v
			case *corev1.PersistentVolumeClaim:
				o.claims[v.Name] = v
			case *batchv1.Job:
				o.jobs[v.Name] = v
			}
		}
	}
	return o
}

// expand does what the kubelet does to a container's args: $(VAR) is the
// value of VAR from the container's env, $$ is $, anything else stays.
func expand(s string, env map[string]string) string {
	re := regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	return re.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// podEnv is the container's environment in the pod of completion index
// i: literal values, the completion index, and resource limits.
func podEnv(t *testing.T, c corev1.Container, index int) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expand(e.Value, env)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == completionIndex:
			env[e.Name] = strconv.Itoa(index)
		case e.ValueFrom.ResourceFieldRef != nil:
			q, ok := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits."))]
			if !ok {
				t.Fatalf("env %s: the container has no %s", e.Name, e.ValueFrom.ResourceFieldRef.Resource)
			}
			env[e.Name] = strconv.FormatInt(q.Value(), 10)
		default:
			t.Fatalf("env %s: a source this test does not know", e.Name)
		}
	}
	return env
}

// faultline returns the binary under test: $FAULTLINE_BIN (the root
// module's suite passes the one it built), else one built from the
// repository.
func faultline(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("FAULTLINE_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "faultline")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/faultline")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building faultline: %v\n%s", err, out)
	}
	return bin
}

// TestManifests decodes the manifests strictly and checks that they are
// an Indexed Job whose pods are the shards of one faultline run (their
// command line is one faultline run --shard accepts: the binary checks
// it, scenario included, with --dry-run) and a check Job that merges
// exactly the directories the shards write.
func TestManifests(t *testing.T) {
	o := decode(t)
	gen, chk := o.jobs["faultline-shards"], o.jobs["faultline-check"]
	if gen == nil || chk == nil {
		t.Fatalf("jobs %v: want faultline-shards and faultline-check", slices.Sorted(maps.Keys(o.jobs)))
	}
	s := gen.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Fatalf("faultline-shards: completionMode %v, want Indexed (the completion index is the shard)", s.CompletionMode)
	}
	if s.Completions == nil || s.Parallelism == nil || *s.Completions != *s.Parallelism || *s.Completions < 2 {
		t.Fatalf("faultline-shards: completions %v, parallelism %v: want every shard at once", s.Completions, s.Parallelism)
	}
	n := int(*s.Completions)
	if s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex != 0 || s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("faultline-shards: backoffLimitPerIndex %v, restartPolicy %s: a shard must not run twice (its --out must be new) nor stop the others", s.BackoffLimitPerIndex, s.Template.Spec.RestartPolicy)
	}
	if len(s.Template.Spec.Containers) != 1 {
		t.Fatalf("faultline-shards: %d containers, want 1", len(s.Template.Spec.Containers))
	}
	c := s.Template.Spec.Containers[0]
	if len(c.Args) < 2 || c.Args[0] != "run" {
		t.Fatalf("faultline-shards args %q: want faultline run SCENARIO ...", c.Args)
	}
	shardArg := regexp.MustCompile(`^--shard=\$\(([A-Za-z_][A-Za-z0-9_]*)\)/(\d+)$`)
	var indexVar string
	for _, a := range c.Args {
		if m := shardArg.FindStringSubmatch(a); m != nil {
			if m[2] != strconv.Itoa(n) {
				t.Errorf("%s: the shard count is not the Job's %d completions", a, n)
			}
			indexVar = m[1]
		}
	}
	for _, e := range c.Env {
		if e.Name == indexVar && (e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != completionIndex) {
			t.Errorf("env %s: want the completion index (fieldRef %s)", e.Name, completionIndex)
		}
	}
	if indexVar == "" {
		t.Fatalf("faultline-shards args %q: no --shard=$(INDEX)/%d", c.Args, n)
	}

	// Where the pod's files are: the scenario from a ConfigMap of the
	// manifest, the runs on a ReadWriteMany claim of the manifest, which
	// the check Job mounts too.
	mounts := map[string]corev1.Volume{}
	for _, v := range s.Template.Spec.Volumes {
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				mounts[m.MountPath] = v
			}
		}
	}
	work := t.TempDir()
	local := map[string]string{} // mount path -> directory here
	var runsClaim string
	for path, v := range mounts {
		dir := filepath.Join(work, v.Name)
		os.MkdirAll(dir, 0o755)
		local[path] = dir
		switch {
		case v.ConfigMap != nil:
			cm := o.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s: ConfigMap %s is not in the manifest", v.Name, v.ConfigMap.Name)
			}
			for name, text := range cm.Data {
				os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
			}
		case v.PersistentVolumeClaim != nil:
			pvc := o.claims[v.PersistentVolumeClaim.ClaimName]
			if pvc == nil {
				t.Fatalf("volume %s: claim %s is not in the manifest", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
			if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
				t.Errorf("claim %s: access modes %v: every shard's pod writes to it at once, so ReadWriteMany", pvc.Name, pvc.Spec.AccessModes)
			}
			runsClaim = pvc.Name
		}
	}
	here := func(p string) string {
		for mount, dir := range local {
			if p == mount || strings.HasPrefix(p, mount+"/") {
				return dir + strings.TrimPrefix(p, mount)
			}
		}
		return p
	}

	// Each pod's command line, as the kubelet expands it, is one that
	// faultline run accepts as shard i of n: the binary checks it.
	bin := faultline(t)
	var outs []string
	digest := ""
	for i := range n {
		env := podEnv(t, c, i)
		var args []string
		for _, a := range c.Args {
			a = expand(a, env)
			if strings.HasPrefix(a, "--out=") {
				outs = append(outs, strings.TrimPrefix(a, "--out="))
			}
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
				a = k + "=" + here(v)
			} else {
				a = here(a)
			}
			args = append(args, a)
		}
		cmd := exec.Command(bin, append(args, "--dry-run")...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, fmt.Appendf(nil, "shard %d/%d: valid", i, n)) {
			t.Fatalf("pod %d: faultline %s --dry-run: %v\n%s", i, strings.Join(args, " "), err, out)
		}
		d := regexp.MustCompile(`scenario digest (\S+)`).FindSubmatch(out)
		if d == nil || (digest != "" && string(d[1]) != digest) {
			t.Errorf("pod %d: scenario digest %q, pod 0's %q: every shard must run the same scenario", i, d, digest)
		} else {
			digest = string(d[1])
		}
	}
	if len(outs) != n || len(slices.Compact(slices.Sorted(slices.Values(outs)))) != n {
		t.Fatalf("the shards' --out %q: want one directory per shard", outs)
	}

	// The check Job merges exactly those directories, from the same
	// claim, with the same image.
	cc := chk.Spec.Template.Spec.Containers
	if len(cc) != 1 || cc[0].Image != c.Image {
		t.Fatalf("faultline-check: containers %d, image %q: want one, the generators' image %q", len(cc), cc[0].Image, c.Image)
	}
	if chk.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("faultline-check: restartPolicy %s, want Never (its exit code is the verdict)", chk.Spec.Template.Spec.RestartPolicy)
	}
	var dirs []string
	for _, a := range cc[0].Args[1:] {
		if !strings.HasPrefix(a, "-") {
			dirs = append(dirs, a)
		}
	}
	if cc[0].Args[0] != "check" || !slices.Equal(slices.Sorted(slices.Values(dirs)), slices.Sorted(slices.Values(outs))) {
		t.Errorf("faultline-check args %q: want check and exactly the shards' directories %q", cc[0].Args, outs)
	}
	claim := ""
	for _, v := range chk.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim != runsClaim {
		t.Errorf("faultline-check mounts claim %q, the shards write to %q", claim, runsClaim)
	}
	help, err := exec.Command(bin, "check", "--help").CombinedOutput()
	if err != nil || !bytes.Contains(help, []byte("SHARD_DIR...")) || !bytes.Contains(help, []byte("--out")) {
		t.Errorf("faultline check --help: %v: it does not take the shards' directories and --out\n%s", err, help)
	}
}
