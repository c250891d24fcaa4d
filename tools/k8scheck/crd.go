package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sschema "k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// crdVersion is one served version of a CustomResourceDefinition, ready to
// validate objects.
type crdVersion struct {
	structural *schema.Structural
	validator  validation.SchemaValidator
}

// crdKind is one kind defined by a CustomResourceDefinition.
type crdKind struct {
	source     string // the CRD file
	namespaced bool
	versions   map[string]*crdVersion // served versions
}

// crdSet maps a group and kind to its definition.
type crdSet map[k8sschema.GroupKind]*crdKind

// loadCRDs reads every CustomResourceDefinition in the *.yaml files of dir.
func loadCRDs(dir string) (crdSet, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.yaml CRD files in %s", dir)
	}
	sort.Strings(files)
	set := crdSet{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %v", f, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
				return nil, fmt.Errorf("%s: not a CustomResourceDefinition: %v", f, err)
			}
			if crd.Kind != "CustomResourceDefinition" {
				continue
			}
			k, err := newCRDKind(f, &crd)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", f, err)
			}
			set[k8sschema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}] = k
		}
	}
	return set, nil
}

func newCRDKind(file string, crd *apiextensionsv1.CustomResourceDefinition) (*crdKind, error) {
	k := &crdKind{
		source:     file,
		namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
		versions:   map[string]*crdVersion{},
	}
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			return nil, fmt.Errorf("version %s has no openAPIV3Schema", v.Name)
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			return nil, fmt.Errorf("version %s: %v", v.Name, err)
		}
		if hasCEL(&internal) {
			// The API server would also evaluate these CEL rules; this
			// checker does not, so refuse rather than pass silently.
			return nil, fmt.Errorf("version %s has x-kubernetes-validations (CEL) rules, which k8scheck does not evaluate", v.Name)
		}
		s, err := schema.NewStructural(&internal)
		if err != nil {
			return nil, fmt.Errorf("version %s: schema is not structural: %v", v.Name, err)
		}
		val, _, err := validation.NewSchemaValidator(&internal)
		if err != nil {
			return nil, fmt.Errorf("version %s: %v", v.Name, err)
		}
		k.versions[v.Name] = &crdVersion{structural: s, validator: val}
	}
	return k, nil
}

func hasCEL(s *apiextensions.JSONSchemaProps) bool {
	if s == nil {
		return false
	}
	if len(s.XValidations) > 0 {
		return true
	}
	for _, p := range s.Properties {
		p := p
		if hasCEL(&p) {
			return true
		}
	}
	if s.Items != nil {
		if hasCEL(s.Items.Schema) {
			return true
		}
		for i := range s.Items.JSONSchemas {
			if hasCEL(&s.Items.JSONSchemas[i]) {
				return true
			}
		}
	}
	if s.AdditionalProperties != nil && hasCEL(s.AdditionalProperties.Schema) {
		return true
	}
	for _, l := range [][]apiextensions.JSONSchemaProps{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range l {
			if hasCEL(&l[i]) {
				return true
			}
		}
	}
	return false
}

// validateCR checks a custom resource the way the API server does on create
// with strict field validation: unknown fields (what the server would prune)
// are errors, then the OpenAPI v3 schema of the served version, the list
// type rules (x-kubernetes-list-type set/map), and the object metadata.
func (k *crdKind) validateCR(obj map[string]interface{}, version string) []string {
	v, ok := k.versions[version]
	if !ok {
		var served []string
		for n := range k.versions {
			served = append(served, n)
		}
		sort.Strings(served)
		return []string{fmt.Sprintf("version %q is not served by the CRD in %s (served: %s)", version, k.source, strings.Join(served, ", "))}
	}
	obj = deepCopyJSON(obj)
	var msgs []string

	// metadata: strictly into ObjectMeta (the server's pruning skips it).
	if md, ok := obj["metadata"]; ok {
		b, _ := json.Marshal(md)
		var om metav1.ObjectMeta
		strictErrs, err := sigsjson.UnmarshalStrict(b, &om)
		if err != nil {
			msgs = append(msgs, "metadata: "+err.Error())
		}
		for _, e := range strictErrs {
			msgs = append(msgs, "strict decoding: metadata: "+e.Error())
		}
	}

	// Unknown fields: prune a copy and report what was pruned.
	cp := deepCopyJSON(obj)
	for _, p := range pruning.PruneWithOptions(cp, v.structural, true, schema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
		msgs = append(msgs, fmt.Sprintf("strict decoding: unknown field %q", p))
	}

	for _, e := range validation.ValidateCustomResource(nil, obj, v.validator) {
		msgs = append(msgs, "schema: "+e.Error())
	}
	for _, e := range listtype.ValidateListSetsAndMaps(nil, v.structural, obj) {
		msgs = append(msgs, "schema: "+e.Error())
	}
	return msgs
}

// deepCopyJSON copies m through JSON the way the API server reads a request
// body: integers become int64, other numbers float64.
func deepCopyJSON(m map[string]interface{}) map[string]interface{} {
	b, _ := json.Marshal(m)
	var out map[string]interface{}
	_ = utiljson.Unmarshal(b, &out)
	return out
}
