package main

import (
	"encoding/json"
	"fmt"
	"strings"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// typedDecoder decodes objects of the kinds that have official Go types into
// those types, strictly: an unknown field (also one that differs only in
// case) or a duplicate field is an error, as with
// `kubectl apply --validate=strict`.
type typedDecoder struct {
	scheme *runtime.Scheme
	dec    runtime.Decoder
}

func newTypedDecoder() (*typedDecoder, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme,
		appsv1.AddToScheme,
		policyv1.AddToScheme,
		rbacv1.AddToScheme,
		networkingv1.AddToScheme,
		batchv1.AddToScheme,
		autoscalingv2.AddToScheme,
		// Prometheus Operator (PodMonitor, PrometheusRule, ServiceMonitor)
		// and cert-manager (Certificate, Issuer): their own Go API types.
		monitoringv1.AddToScheme,
		certmanagerv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	cf := serializer.NewCodecFactory(s, serializer.EnableStrict)
	return &typedDecoder{scheme: s, dec: cf.UniversalDeserializer()}, nil
}

// knows reports whether gvk has a registered Go type.
func (d *typedDecoder) knows(gvk schema.GroupVersionKind) bool {
	return d.scheme.Recognizes(gvk)
}

// decode returns the typed object and one message per problem found.
func (d *typedDecoder) decode(obj map[string]interface{}) (runtime.Object, []string) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, []string{err.Error()}
	}
	out, _, err := d.dec.Decode(b, nil, nil)
	if err == nil {
		return out, nil
	}
	if se, ok := runtime.AsStrictDecodingError(err); ok {
		var msgs []string
		for _, e := range se.Errors() {
			msgs = append(msgs, "strict decoding: "+e.Error())
		}
		return out, msgs
	}
	return nil, []string{fmt.Sprintf("cannot decode: %v", strings.TrimSpace(err.Error()))}
}
