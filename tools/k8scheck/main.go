// Command k8scheck renders the Tongka kustomizations and checks every object
// offline: strict decoding into the official Kubernetes Go types (unknown
// fields are errors), Strimzi resources against the CRD schemas of the
// Strimzi release (fetch_crds.sh), and the Tongka conventions
// (deploy/k8s/README.md). It exits 1 when it finds a problem, 2 when it
// cannot run.
//
// Usage: k8scheck [-crds DIR] [-rules-out DIR] [-namespace NS] [-render] [PATH...]
//
// Each PATH is a kustomization directory or a tree searched for them
// (Components are checked through the kustomizations that use them); the
// default is deploy/k8s.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("k8scheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	crds := fs.String("crds", os.Getenv("K8SCHECK_CRDS"), "directory of the Strimzi CRD files written by fetch_crds.sh (default $K8SCHECK_CRDS)")
	rulesOut := fs.String("rules-out", "", "write spec of every PrometheusRule to DIR/<name>.rules.yml (for promtool)")
	namespace := fs.String("namespace", "tongka", "the namespace every namespaced object must be in")
	renderOnly := fs.Bool("render", false, "print the rendered objects, each headed by its source file, and check nothing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"deploy/k8s"}
	}

	if *renderOnly {
		for _, p := range paths {
			dirs, err := findKustomizations(p)
			if err != nil {
				fmt.Fprintf(stderr, "k8scheck: %v\n", err)
				return 2
			}
			for _, d := range dirs {
				objs, err := render(d)
				if err != nil {
					fmt.Fprintf(stderr, "k8scheck: %s: %v\n", d, err)
					return 1
				}
				for _, o := range objs {
					b, _ := yaml.Marshal(o.Obj)
					fmt.Fprintf(stdout, "---\n# kustomization %s, file %s\n%s", d, o.File, b)
				}
			}
		}
		return 0
	}

	c, err := NewChecker(Options{CRDDir: *crds, Namespace: *namespace, RulesOut: *rulesOut})
	if err != nil {
		fmt.Fprintf(stderr, "k8scheck: %v\n", err)
		return 2
	}
	rep, err := c.Check(paths)
	if err != nil {
		fmt.Fprintf(stderr, "k8scheck: %v\n", err)
		return 2
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, p.String())
	}
	strimzi := "Strimzi CRDs from " + *crds
	if *crds == "" {
		strimzi = "no Strimzi CRDs"
	}
	fmt.Fprintf(stdout, "k8scheck: %d kustomization(s) [%s], %d object(s), %d problem(s); %s\n",
		len(rep.Kustomizations), strings.Join(rep.Kustomizations, " "), rep.Objects, len(rep.Problems), strimzi)
	if len(rep.Problems) > 0 {
		return 1
	}
	return 0
}
