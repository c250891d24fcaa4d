package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// Problem is one thing wrong with one object of one kustomization.
type Problem struct {
	Kustomization string // the kustomization directory that was built
	File          string // the file the object was written in
	Object        string // Kind namespace/name
	Msg           string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s: %s  [kustomization %s]", p.File, p.Object, p.Msg, p.Kustomization)
}

// Options configure a Checker.
type Options struct {
	// CRDDir holds the Strimzi CRDs (fetch_crds.sh). Without it, Strimzi
	// resources are reported as unvalidated, which is a problem.
	CRDDir string
	// Namespace every namespaced object must be in.
	Namespace string
	// RulesOut, when set, receives spec of every PrometheusRule as a
	// Prometheus rule file <name>.rules.yml, for promtool.
	RulesOut string
}

// Report is the result of a run.
type Report struct {
	Kustomizations []string
	Objects        int
	Problems       []Problem
	RuleFiles      []string
}

// Checker renders kustomizations and checks the objects.
type Checker struct {
	opts  Options
	typed *typedDecoder
	crds  crdSet
}

func NewChecker(opts Options) (*Checker, error) {
	td, err := newTypedDecoder()
	if err != nil {
		return nil, err
	}
	c := &Checker{opts: opts, typed: td}
	if opts.CRDDir != "" {
		if c.crds, err = loadCRDs(opts.CRDDir); err != nil {
			return nil, fmt.Errorf("loading CRDs: %v", err)
		}
	}
	return c, nil
}

// Check renders and checks every kustomization under each path (a
// kustomization directory, or a tree searched for kustomizations).
func (c *Checker) Check(paths []string) (*Report, error) {
	rep := &Report{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%s: not a directory", p)
		}
		dirs, err := findKustomizations(p)
		if err != nil {
			return nil, err
		}
		if len(dirs) == 0 {
			return nil, fmt.Errorf("%s: no kustomization found", p)
		}
		for _, d := range dirs {
			rep.Kustomizations = append(rep.Kustomizations, d)
			objs, err := render(d)
			if err != nil {
				rep.Problems = append(rep.Problems, Problem{Kustomization: d, File: kustomizationFile(d), Object: "(kustomize build)", Msg: err.Error()})
				continue
			}
			rep.Objects += len(objs)
			probs, rules, err := c.checkObjects(d, objs)
			if err != nil {
				return nil, err
			}
			rep.Problems = append(rep.Problems, probs...)
			rep.RuleFiles = append(rep.RuleFiles, rules...)
		}
	}
	return rep, nil
}

// object is a rendered object with what the checks need.
type object struct {
	rendered
	gvk       schema.GroupVersionKind
	name      string
	namespace string
	labels    map[string]string
	typed     runtime.Object // set for kinds with Go types
}

func (o *object) id() string {
	if o.namespace != "" {
		return fmt.Sprintf("%s %s/%s", o.gvk.Kind, o.namespace, o.name)
	}
	return fmt.Sprintf("%s %s", o.gvk.Kind, o.name)
}

// clusterScoped lists the kinds with Go types that have no namespace.
var clusterScoped = map[schema.GroupKind]bool{
	{Group: "", Kind: "Namespace"}:                                   true,
	{Group: "", Kind: "PersistentVolume"}:                            true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
	{Group: "cert-manager.io", Kind: "ClusterIssuer"}:                true,
}

// sink collects the problems of one kustomization.
type sink struct {
	kust  string
	probs []Problem
}

func (s *sink) add(o *object, format string, args ...interface{}) {
	s.probs = append(s.probs, Problem{Kustomization: s.kust, File: o.File, Object: o.id(), Msg: fmt.Sprintf(format, args...)})
}

func (c *Checker) checkObjects(kust string, rendered []rendered) ([]Problem, []string, error) {
	s := &sink{kust: kust}
	var objs []*object
	for _, r := range rendered {
		o := &object{rendered: r}
		apiVersion, _ := r.Obj["apiVersion"].(string)
		kind, _ := r.Obj["kind"].(string)
		gv, err := schema.ParseGroupVersion(apiVersion)
		if err != nil || apiVersion == "" || kind == "" {
			o.gvk = schema.GroupVersionKind{Kind: kind}
			s.add(o, "missing or invalid apiVersion/kind (%q, %q)", apiVersion, kind)
			continue
		}
		o.gvk = gv.WithKind(kind)
		if md, ok := r.Obj["metadata"].(map[string]interface{}); ok {
			o.name, _ = md["name"].(string)
			o.namespace, _ = md["namespace"].(string)
		}
		objs = append(objs, o)
		c.checkSchema(s, o)
	}
	rules, err := c.checkConventions(s, objs)
	sort.SliceStable(s.probs, func(i, j int) bool {
		if s.probs[i].File != s.probs[j].File {
			return s.probs[i].File < s.probs[j].File
		}
		return s.probs[i].Object < s.probs[j].Object
	})
	return s.probs, rules, err
}

// checkSchema decodes o strictly into its Go type, or validates it against
// its CRD, and checks the metadata every object needs.
func (c *Checker) checkSchema(s *sink, o *object) {
	gk := o.gvk.GroupKind()
	namespaced := !clusterScoped[gk]
	switch {
	case c.typed.knows(o.gvk):
		typed, msgs := c.typed.decode(o.Obj)
		for _, m := range msgs {
			s.add(o, "%s", m)
		}
		o.typed = typed
	case c.crds[gk] != nil:
		k := c.crds[gk]
		namespaced = k.namespaced
		for _, m := range k.validateCR(o.Obj, o.gvk.Version) {
			s.add(o, "%s", m)
		}
	case isStrimzi(o.gvk) && c.crds == nil:
		s.add(o, "cannot validate %s: no Strimzi CRDs loaded (run tools/k8scheck/fetch_crds.sh and pass -crds DIR)", o.gvk)
	default:
		s.add(o, "no schema known for %s: k8scheck validates only core Kubernetes kinds, Strimzi, Prometheus Operator and cert-manager kinds; extend tools/k8scheck before using it", o.gvk)
	}

	// metadata
	md, _ := o.Obj["metadata"].(map[string]interface{})
	if o.name == "" {
		s.add(o, "metadata.name is empty")
	} else {
		check := validation.IsDNS1123Subdomain
		if gk.Group == "" && (gk.Kind == "Service" || gk.Kind == "Namespace") {
			check = validation.IsDNS1123Label
		}
		for _, m := range check(o.name) {
			s.add(o, "metadata.name %q: %s", o.name, m)
		}
	}
	if namespaced {
		if o.namespace == "" {
			s.add(o, "metadata.namespace is not set (the kustomization should set namespace: %s)", c.opts.Namespace)
		} else if c.opts.Namespace != "" && o.namespace != c.opts.Namespace {
			s.add(o, "metadata.namespace is %q, want %q", o.namespace, c.opts.Namespace)
		}
	} else if o.namespace != "" {
		s.add(o, "metadata.namespace is set on a cluster-scoped %s", gk.Kind)
	}
	o.labels = stringMap(md["labels"])
	for _, e := range metav1validation.ValidateLabels(o.labels, field.NewPath("metadata", "labels")) {
		s.add(o, "%s", e.Error())
	}
	for _, e := range apivalidation.ValidateAnnotations(stringMap(md["annotations"]), field.NewPath("metadata", "annotations")) {
		s.add(o, "%s", e.Error())
	}
	if o.labels["app.kubernetes.io/part-of"] != "tongka" {
		s.add(o, "label app.kubernetes.io/part-of=tongka is missing (set it with the kustomization's labels:)")
	}
}

func isStrimzi(gvk schema.GroupVersionKind) bool {
	return strings.HasSuffix(gvk.Group, "strimzi.io")
}

func stringMap(v interface{}) map[string]string {
	m, _ := v.(map[string]interface{})
	out := map[string]string{}
	for k, x := range m {
		switch x := x.(type) {
		case string:
			out[k] = x
		default:
			out[k] = fmt.Sprint(x)
		}
	}
	return out
}

// writeRuleFile writes spec of a PrometheusRule as a Prometheus rule file.
func (c *Checker) writeRuleFile(o *object) (string, error) {
	spec, ok := o.Obj["spec"].(map[string]interface{})
	if !ok {
		return "", nil
	}
	b, err := yaml.Marshal(spec)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(c.opts.RulesOut, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(c.opts.RulesOut, o.name+".rules.yml")
	header := fmt.Sprintf("# spec of PrometheusRule %s/%s from %s (written by tools/k8scheck)\n", o.namespace, o.name, o.File)
	return p, os.WriteFile(p, append([]byte(header), b...), 0o644)
}
