package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// originAnnotation is where kustomize records the file a resource came from
// when the kustomization asks for buildMetadata: [originAnnotations].
const originAnnotation = "config.kubernetes.io/origin"

// kustomizationFile returns the kustomization file of dir, or "".
func kustomizationFile(dir string) string {
	for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// isComponent reports whether the kustomization file of dir declares
// kind: Component. Components cannot be built on their own; they are checked
// through the kustomizations that use them.
func isComponent(dir string) (bool, error) {
	f := kustomizationFile(dir)
	if f == "" {
		return false, fmt.Errorf("no kustomization file in %s", dir)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return false, err
	}
	var k types.Kustomization
	if err := kyaml.Unmarshal(b, &k); err != nil {
		return false, fmt.Errorf("%s: %v", f, err)
	}
	return k.Kind == types.ComponentKind, nil
}

// findKustomizations walks root and returns every directory that holds a
// kustomization which is not a Component, in lexical order.
func findKustomizations(root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") && p != root {
			return filepath.SkipDir
		}
		if kustomizationFile(p) == "" {
			return nil
		}
		comp, err := isComponent(p)
		if err != nil {
			return err
		}
		if !comp {
			dirs = append(dirs, p)
		}
		return nil
	})
	return dirs, err
}

// rendered is one object of a kustomize build, with the file it came from.
type rendered struct {
	File string                 // the source file, relative to the working directory when possible
	Obj  map[string]interface{} // the object, origin annotation removed
}

// render builds the kustomization in dir with kustomize's krusty (the same
// code as `kustomize build` and `kubectl kustomize`) and returns the objects.
//
// The build goes through a wrapper kustomization in a temporary directory
// that only adds buildMetadata: [originAnnotations], so that every object
// can be reported with the file it was written in; the annotation is removed
// before the objects are checked.
func render(dir string) ([]rendered, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "k8scheck-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// kustomize takes only relative paths to other kustomizations.
	rel, err := filepath.Rel(tmp, abs)
	if err != nil {
		return nil, err
	}
	wrapper := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %q\nbuildMetadata: [originAnnotations]\n", filepath.ToSlash(rel))
	if err := os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), []byte(wrapper), 0o644); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	k := krusty.MakeKustomizer(opts)
	m, err := k.Run(filesys.MakeFsOnDisk(), tmp)
	if err != nil {
		return nil, err
	}
	return fromResMap(m, tmp)
}

func fromResMap(m resmap.ResMap, base string) ([]rendered, error) {
	wd, _ := os.Getwd()
	var out []rendered
	for _, r := range m.Resources() {
		obj, err := r.Map()
		if err != nil {
			return nil, err
		}
		file := "(unknown file)"
		if md, ok := obj["metadata"].(map[string]interface{}); ok {
			if ann, ok := md["annotations"].(map[string]interface{}); ok {
				if o, ok := ann[originAnnotation].(string); ok {
					file = originFile(o, base, wd)
					delete(ann, originAnnotation)
					if len(ann) == 0 {
						delete(md, "annotations")
					}
				}
			}
		}
		out = append(out, rendered{File: file, Obj: obj})
	}
	return out, nil
}

// originFile turns the origin annotation ("path: ../x/y.yaml\n" or, for a
// generated object, "configuredIn: ...") into a file name relative to wd.
func originFile(origin, base, wd string) string {
	var o struct {
		Path         string `json:"path"`
		ConfiguredIn string `json:"configuredIn"`
	}
	if err := kyaml.Unmarshal([]byte(origin), &o); err != nil {
		return "(unknown file)"
	}
	p := o.Path
	suffix := ""
	if p == "" && o.ConfiguredIn != "" {
		p, suffix = o.ConfiguredIn, " (generated)"
	}
	if p == "" {
		return "(unknown file)"
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	if wd != "" {
		if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "../../..") {
			p = rel
		}
	}
	return p + suffix
}
