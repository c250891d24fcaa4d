package main

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The Tongka conventions (deploy/k8s/README.md).
const (
	stateDir       = "/var/lib/tongka"
	podIndexLabel  = "apps.kubernetes.io/pod-index"
	kafkaGroup     = "kafka.strimzi.io"
	strimziCluster = "strimzi.io/cluster"
	dataClassLabel = "tongka.io/data-class"
	wantReplicas   = 3
	wantMinISR     = 2
	minBrokers     = 3
	minControllers = 3
	promScrape     = "prometheus.io/scrape"
	promPort       = "prometheus.io/port"
	portGRPC       = "grpc"
	portMetrics    = "metrics"
	serverName     = "server"
	pathHealthz    = "/healthz"
	pathReadyz     = "/readyz"
	flagReplicaIdx = "--replica_index"
	flagReplicaCnt = "--replica_count"
	flagStateDir   = "--state_dir"
	flagAuth       = "--auth"
)

// moneyTopics keep everything (retention -1): the ledger, the card
// registry's source of truth, and fraud's evidence (ingest's transaction id
// conflicts). A topic labelled tongka.io/data-class=money or =evidence is one
// too.
var moneyTopics = map[string]bool{
	"tongka.txn":           true,
	"tongka.txn.conflicts": true,
	"tongka.cards":         true,
	"tongka.members":       true,
	"tongka.settlement":    true,
	"tongka.subsidy":       true,
}

// coPartitioned topics are keyed by card_id and need one partition count.
var coPartitioned = []string{"tongka.txn", "tongka.txn.conflicts", "tongka.cards", "tongka.alerts"}

// allTopics must all exist in a render that defines the Kafka cluster.
var allTopics = []string{"tongka.txn", "tongka.txn.conflicts", "tongka.cards", "tongka.members", "tongka.alerts", "tongka.settlement", "tongka.subsidy"}

func (c *Checker) checkConventions(s *sink, objs []*object) ([]string, error) {
	var (
		stss     []*object
		services = map[string]*object{}
		pdbs     []*object
		kafkas   []*object
		pools    []*object
		topics   []*object
		rules    []string
	)
	for _, o := range objs {
		switch t := o.typed.(type) {
		case *appsv1.StatefulSet:
			stss = append(stss, o)
		case *corev1.Service:
			services[t.Namespace+"/"+t.Name] = o
		case *policyv1.PodDisruptionBudget:
			pdbs = append(pdbs, o)
		case *monitoringv1.PrometheusRule:
			checkPrometheusRule(s, o, t)
			if c.opts.RulesOut != "" {
				p, err := c.writeRuleFile(o)
				if err != nil {
					return nil, err
				}
				if p != "" {
					rules = append(rules, p)
				}
			}
		case *certmanagerv1.Certificate:
			if t.Spec.SecretName == "" {
				s.add(o, "spec.secretName is empty")
			}
		case *appsv1.Deployment:
			s.add(o, "Tongka services run as StatefulSets (one RocksDB volume per replica, static partition ownership), not Deployments")
		}
		if o.gvk.Group == kafkaGroup {
			switch o.gvk.Kind {
			case "Kafka":
				kafkas = append(kafkas, o)
			case "KafkaNodePool":
				pools = append(pools, o)
			case "KafkaTopic":
				topics = append(topics, o)
			case "KafkaUser":
				if str(get(o.Obj, "spec", "authentication", "type")) != "tls" {
					s.add(o, "spec.authentication.type must be tls (the Kafka listener takes only mTLS clients)")
				}
			}
		}
	}
	for _, o := range stss {
		checkStatefulSet(s, o, o.typed.(*appsv1.StatefulSet), services, pdbs)
	}
	for _, o := range pdbs {
		checkPDB(s, o, o.typed.(*policyv1.PodDisruptionBudget), stss)
	}
	for _, o := range kafkas {
		checkKafka(s, o, pools)
	}
	checkTopics(s, topics, kafkas)
	return rules, nil
}

// ---------------------------------------------------------------------------
// StatefulSet, Service, PodDisruptionBudget

func checkStatefulSet(s *sink, o *object, sts *appsv1.StatefulSet, services map[string]*object, pdbs []*object) {
	spec := &sts.Spec
	pod := &spec.Template.Spec
	podLabels := labels.Set(spec.Template.Labels)

	if len(spec.VolumeClaimTemplates) == 0 {
		s.add(o, "spec.volumeClaimTemplates is empty: every replica needs its own RocksDB volume")
	}
	vcts := map[string]bool{}
	for _, v := range spec.VolumeClaimTemplates {
		vcts[v.Name] = true
		if _, ok := v.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
			s.add(o, "volumeClaimTemplate %q has no storage request", v.Name)
		}
	}
	if spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		s.add(o, "spec.podManagementPolicy is %q, want Parallel (replicas own disjoint partitions and start independently)", orDefault(string(spec.PodManagementPolicy), "OrderedReady"))
	}
	if spec.Selector == nil {
		s.add(o, "spec.selector is missing")
	} else if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err != nil {
		s.add(o, "spec.selector: %v", err)
	} else if sel.Empty() || !sel.Matches(podLabels) {
		s.add(o, "spec.selector does not match the pod template's labels")
	}
	if spec.Template.Labels["app.kubernetes.io/name"] == "" {
		s.add(o, "pod template has no app.kubernetes.io/name label")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		s.add(o, "pod automountServiceAccountToken must be false (Tongka services do not call the Kubernetes API)")
	}

	// PodDisruptionBudget.
	covered := false
	for _, p := range pdbs {
		pdb := p.typed.(*policyv1.PodDisruptionBudget)
		if pdb.Namespace != sts.Namespace || pdb.Spec.Selector == nil {
			continue
		}
		if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(podLabels) {
			covered = true
		}
	}
	if !covered {
		s.add(o, "no PodDisruptionBudget in this kustomization selects its pods")
	}

	// Pod security.
	podSC := pod.SecurityContext
	if podSC == nil || podSC.RunAsNonRoot == nil || !*podSC.RunAsNonRoot {
		s.add(o, "pod securityContext.runAsNonRoot must be true")
	}

	// Containers.
	var server *corev1.Container
	for i := range pod.Containers {
		ctr := &pod.Containers[i]
		checkContainer(s, o, "container", ctr, podSC)
		if ctr.Name == serverName {
			server = ctr
		}
	}
	for i := range pod.InitContainers {
		checkContainer(s, o, "initContainer", &pod.InitContainers[i], podSC)
	}
	var metricsPort, grpcPort int32
	if server == nil {
		s.add(o, "no container named %q (the service's process)", serverName)
	} else {
		for _, p := range server.Ports {
			switch p.Name {
			case portGRPC:
				grpcPort = p.ContainerPort
			case portMetrics:
				metricsPort = p.ContainerPort
			}
		}
	}

	// Headless Service.
	if spec.ServiceName == "" {
		s.add(o, "spec.serviceName is empty: a StatefulSet needs its headless Service")
	} else if svcObj, ok := services[sts.Namespace+"/"+spec.ServiceName]; !ok {
		s.add(o, "spec.serviceName %q: no such Service in this kustomization", spec.ServiceName)
	} else {
		checkHeadlessService(s, svcObj, svcObj.typed.(*corev1.Service), podLabels, grpcPort != 0)
	}
	if server == nil {
		return
	}

	// Metrics port: scraped by Prometheus, probed by Kubernetes.
	if metricsPort == 0 {
		s.add(o, "container %q has no port named %q (Prometheus scrapes it; the probes use it)", server.Name, portMetrics)
	} else {
		ann := spec.Template.Annotations
		if ann[promScrape] != "true" {
			s.add(o, "pod template annotation %s is %q, want \"true\"", promScrape, ann[promScrape])
		}
		if ann[promPort] != strconv.Itoa(int(metricsPort)) {
			s.add(o, "pod template annotation %s is %q, want %q (the metrics port)", promPort, ann[promPort], strconv.Itoa(int(metricsPort)))
		}
	}
	// Probes: HTTP on the metrics port (see checkProbe).
	for _, pr := range []struct {
		name, path string
		probe      *corev1.Probe
	}{
		{"startupProbe", pathHealthz, server.StartupProbe},
		{"livenessProbe", pathHealthz, server.LivenessProbe},
		{"readinessProbe", pathReadyz, server.ReadinessProbe},
	} {
		checkProbe(s, o, server, pr.name, pr.path, pr.probe, metricsPort)
	}

	// State directory on a volumeClaimTemplate, and the partition flags.
	env := map[string]corev1.EnvVar{}
	for _, e := range server.Env {
		env[e.Name] = e
	}
	args := append(append([]string{}, server.Command...), server.Args...)
	dir := flagValue(args, flagStateDir)
	if dir == "" {
		s.add(o, "container %q has no %s flag", server.Name, flagStateDir)
	} else {
		mounted := false
		for _, m := range server.VolumeMounts {
			if m.MountPath == dir && vcts[m.Name] {
				mounted = true
			}
		}
		if !mounted {
			s.add(o, "container %q: %s=%s is not the mount path of a volumeClaimTemplate", server.Name, flagStateDir, dir)
		}
	}
	if v := flagValue(args, flagReplicaIdx); v == "" {
		s.add(o, "container %q has no %s flag", server.Name, flagReplicaIdx)
	} else if name, ok := envRef(v); !ok {
		s.add(o, "container %q: %s=%s must come from the downward API ($(VAR) with VAR from the pod's %s label)", server.Name, flagReplicaIdx, v, podIndexLabel)
	} else if e, ok := env[name]; !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil ||
		e.ValueFrom.FieldRef.FieldPath != "metadata.labels['"+podIndexLabel+"']" {
		s.add(o, "container %q: env %s must be fieldRef metadata.labels['%s']", server.Name, name, podIndexLabel)
	}
	// Authentication: a service with a gRPC port says its mode, and it is mTLS. Development
	// tokens (one shared secret for every tenant) never reach a cluster.
	if grpcPort != 0 {
		if v := flagValue(args, flagAuth); v != "mtls" {
			s.add(o, "container %q: %s=%q, want %s=mtls (callers are identified by client certificates; --auth=dev is for development only)", server.Name, flagAuth, v, flagAuth)
		}
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--dev_token_secret") {
			s.add(o, "container %q passes %s: development tokens are not for a cluster", server.Name, strings.SplitN(a, "=", 2)[0])
		}
	}
	replicas := int32(1)
	if spec.Replicas != nil {
		replicas = *spec.Replicas
	}
	if v := flagValue(args, flagReplicaCnt); v == "" {
		s.add(o, "container %q has no %s flag", server.Name, flagReplicaCnt)
	} else {
		val := v
		if name, ok := envRef(v); ok {
			e, found := env[name]
			if !found || e.ValueFrom != nil {
				s.add(o, "container %q: %s=%s: env %s must be a literal value", server.Name, flagReplicaCnt, v, name)
				val = ""
			} else {
				val = e.Value
			}
		}
		if val != "" && val != strconv.Itoa(int(replicas)) {
			s.add(o, "container %q: %s is %s but spec.replicas is %d: replicas would own the wrong partitions", server.Name, flagReplicaCnt, val, replicas)
		}
	}
}

func checkContainer(s *sink, o *object, what string, c *corev1.Container, podSC *corev1.PodSecurityContext) {
	if c.Image == "" {
		s.add(o, "%s %q has no image", what, c.Name)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			s.add(o, "%s %q has no resources.requests.%s", what, c.Name, r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			s.add(o, "%s %q has no resources.limits.%s", what, c.Name, r)
		}
	}
	sc := c.SecurityContext
	nonRoot := podSC != nil && podSC.RunAsNonRoot != nil && *podSC.RunAsNonRoot
	if sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	if !nonRoot {
		s.add(o, "%s %q may run as root (runAsNonRoot is not true)", what, c.Name)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		s.add(o, "%s %q: securityContext.readOnlyRootFilesystem must be true", what, c.Name)
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		s.add(o, "%s %q: securityContext.allowPrivilegeEscalation must be false", what, c.Name)
	}
	if sc != nil && sc.Privileged != nil && *sc.Privileged {
		s.add(o, "%s %q is privileged", what, c.Name)
	}
}

// checkHeadlessService checks the StatefulSet's headless Service. It
// publishes the port metrics always, and the port grpc exactly when the
// container "server" has one (a service with a gRPC API).
func checkHeadlessService(s *sink, o *object, svc *corev1.Service, podLabels labels.Set, hasGRPC bool) {
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		s.add(o, "spec.clusterIP must be None (headless Service of a StatefulSet)")
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		s.add(o, "spec.selector does not select the StatefulSet's pods")
	}
	names := map[string]bool{}
	for _, p := range svc.Spec.Ports {
		names[p.Name] = true
	}
	if !names[portMetrics] {
		s.add(o, "no port named %q", portMetrics)
	}
	switch {
	case hasGRPC && !names[portGRPC]:
		s.add(o, "no port named %q, but the container %q has one (clients and forwarding replicas reach the API through this Service)", portGRPC, serverName)
	case !hasGRPC && names[portGRPC]:
		s.add(o, "port %q published, but the container %q has no port named %q", portGRPC, serverName, portGRPC)
	}
}

// checkProbe checks one probe of the container "server": an HTTP GET of path
// on the port named metrics (plain HTTP). Not a gRPC probe: Kubernetes'
// gRPC probes cannot present a client certificate, and Tongka's gRPC servers
// require one.
func checkProbe(s *sink, o *object, server *corev1.Container, name, path string, pr *corev1.Probe, metricsPort int32) {
	want := fmt.Sprintf("httpGet %s on port %q", path, portMetrics)
	if pr == nil {
		s.add(o, "container %q has no %s (want %s)", server.Name, name, want)
		return
	}
	var handlers []string
	if pr.Exec != nil {
		handlers = append(handlers, "exec")
	}
	if pr.HTTPGet != nil {
		handlers = append(handlers, "httpGet")
	}
	if pr.TCPSocket != nil {
		handlers = append(handlers, "tcpSocket")
	}
	if pr.GRPC != nil {
		handlers = append(handlers, "grpc")
	}
	if len(handlers) > 1 {
		s.add(o, "container %q %s has more than one handler (%s)", server.Name, name, strings.Join(handlers, ", "))
	}
	h := pr.HTTPGet
	if h == nil {
		why := ""
		if pr.GRPC != nil {
			why = ": gRPC probes cannot present the client certificate Tongka's gRPC servers require"
		}
		s.add(o, "container %q %s is not an httpGet probe (want %s)%s", server.Name, name, want, why)
		return
	}
	if h.Path != path {
		s.add(o, "container %q %s gets path %q, want %q", server.Name, name, h.Path, path)
	}
	switch {
	case h.Port.String() == portMetrics:
	case metricsPort != 0 && h.Port.IntValue() == int(metricsPort):
	default:
		s.add(o, "container %q %s probes port %q, want the port named %q", server.Name, name, h.Port.String(), portMetrics)
	}
	if h.Scheme != "" && h.Scheme != corev1.URISchemeHTTP {
		s.add(o, "container %q %s uses scheme %s, want HTTP (the metrics endpoint is plain HTTP)", server.Name, name, h.Scheme)
	}
}

func checkPDB(s *sink, o *object, pdb *policyv1.PodDisruptionBudget, stss []*object) {
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		s.add(o, "neither maxUnavailable nor minAvailable is set")
	}
	if pdb.Spec.Selector == nil {
		s.add(o, "spec.selector is missing")
		return
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		s.add(o, "spec.selector: %v", err)
		return
	}
	for _, so := range stss {
		sts := so.typed.(*appsv1.StatefulSet)
		if sts.Namespace == pdb.Namespace && sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
			return
		}
	}
	s.add(o, "selects no pods of a StatefulSet in this kustomization")
}

// flagValue returns the value of --name=value (or --name value) in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if strings.HasPrefix(a, name+"=") {
			return strings.TrimPrefix(a, name+"=")
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

var envRefRE = regexp.MustCompile(`^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$`)

// envRef returns VAR when v is exactly $(VAR).
func envRef(v string) (string, bool) {
	m := envRefRE.FindStringSubmatch(v)
	if m == nil {
		return "", false
	}
	return m[1], true
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// ---------------------------------------------------------------------------
// Strimzi: Kafka, KafkaNodePool, KafkaTopic

func checkKafka(s *sink, o *object, pools []*object) {
	md, _ := o.Obj["metadata"].(map[string]interface{})
	ann := stringMap(md["annotations"])
	if ann["strimzi.io/kraft"] != "enabled" {
		s.add(o, "annotation strimzi.io/kraft must be \"enabled\" (KRaft mode, no ZooKeeper)")
	}
	if ann["strimzi.io/node-pools"] != "enabled" {
		s.add(o, "annotation strimzi.io/node-pools must be \"enabled\"")
	}
	if get(o.Obj, "spec", "zookeeper") != nil {
		s.add(o, "spec.zookeeper is set: Tongka runs Kafka in KRaft mode")
	}
	cfg, _ := get(o.Obj, "spec", "kafka", "config").(map[string]interface{})
	for _, want := range []struct {
		key string
		val string
	}{
		{"min.insync.replicas", "2"},
		{"default.replication.factor", "3"},
		{"offsets.topic.replication.factor", "3"},
		{"transaction.state.log.replication.factor", "3"},
		{"transaction.state.log.min.isr", "2"},
		{"unclean.leader.election.enable", "false"},
		{"auto.create.topics.enable", "false"},
	} {
		got, ok := cfg[want.key]
		if !ok {
			s.add(o, "spec.kafka.config.%s is not set (want %s)", want.key, want.val)
		} else if str(got) != want.val {
			s.add(o, "spec.kafka.config.%s is %s, want %s", want.key, str(got), want.val)
		}
	}
	listeners, _ := get(o.Obj, "spec", "kafka", "listeners").([]interface{})
	if len(listeners) == 0 {
		s.add(o, "spec.kafka.listeners is empty")
	}
	for _, l := range listeners {
		lm, _ := l.(map[string]interface{})
		name := str(lm["name"])
		if tls, _ := lm["tls"].(bool); !tls {
			s.add(o, "listener %q: tls must be true (every client connection is TLS)", name)
		}
		if str(get(lm, "authentication", "type")) != "tls" {
			s.add(o, "listener %q: authentication.type must be tls (mutual TLS)", name)
		}
	}

	// Node pools of this cluster.
	brokers, controllers := 0, 0
	for _, p := range pools {
		if p.labels[strimziCluster] != o.name || p.namespace != o.namespace {
			continue
		}
		n, _ := num(get(p.Obj, "spec", "replicas"))
		roles, _ := get(p.Obj, "spec", "roles").([]interface{})
		for _, r := range roles {
			switch str(r) {
			case "broker":
				brokers += int(n)
			case "controller":
				controllers += int(n)
			}
		}
		checkStorage(s, p, get(p.Obj, "spec", "storage"))
	}
	if brokers < minBrokers {
		s.add(o, "its node pools have %d broker(s), want at least %d (replication factor 3)", brokers, minBrokers)
	}
	if controllers < minControllers || controllers%2 == 0 {
		s.add(o, "its node pools have %d controller(s), want an odd number >= %d (KRaft quorum)", controllers, minControllers)
	}
}

func checkStorage(s *sink, o *object, st interface{}) {
	m, _ := st.(map[string]interface{})
	switch str(m["type"]) {
	case "jbod":
		vols, _ := m["volumes"].([]interface{})
		if len(vols) == 0 {
			s.add(o, "spec.storage: jbod with no volumes")
		}
		for _, v := range vols {
			checkStorage(s, o, v)
		}
	case "persistent-claim":
		if dc, _ := m["deleteClaim"].(bool); dc {
			s.add(o, "spec.storage: deleteClaim must be false (the volumes hold the log)")
		}
	default:
		s.add(o, "spec.storage type %q: Kafka data must be on persistent-claim volumes", str(m["type"]))
	}
}

func checkTopics(s *sink, topics []*object, kafkas []*object) {
	clusters := map[string]bool{}
	for _, k := range kafkas {
		clusters[k.namespace+"/"+k.name] = true
	}
	byName := map[string]*object{}
	for _, o := range topics {
		name := str(get(o.Obj, "spec", "topicName"))
		if name == "" {
			name = o.name
		}
		if prev, dup := byName[name]; dup {
			s.add(o, "topic %s is also defined by %s", name, prev.id())
		}
		byName[name] = o
		cluster := o.labels[strimziCluster]
		if cluster == "" {
			s.add(o, "label %s is missing (the Topic Operator ignores the topic)", strimziCluster)
		} else if len(clusters) > 0 && !clusters[o.namespace+"/"+cluster] {
			s.add(o, "label %s=%s names no Kafka in this kustomization", strimziCluster, cluster)
		}
		if n, ok := num(get(o.Obj, "spec", "replicas")); !ok || n != wantReplicas {
			s.add(o, "topic %s: spec.replicas is %s, want %d", name, orDefault(str(get(o.Obj, "spec", "replicas")), "not set"), wantReplicas)
		}
		if n, ok := num(get(o.Obj, "spec", "partitions")); !ok || n < 1 {
			s.add(o, "topic %s: spec.partitions is %s, want an explicit count", name, orDefault(str(get(o.Obj, "spec", "partitions")), "not set"))
		}
		cfg, _ := get(o.Obj, "spec", "config").(map[string]interface{})
		if n, ok := num(cfg["min.insync.replicas"]); !ok || n != wantMinISR {
			s.add(o, "topic %s: config min.insync.replicas is %s, want %d", name, orDefault(str(cfg["min.insync.replicas"]), "not set"), wantMinISR)
		}
		if v, ok := cfg["unclean.leader.election.enable"]; ok && str(v) != "false" {
			s.add(o, "topic %s: config unclean.leader.election.enable is %s, want false", name, str(v))
		}
		if moneyTopics[name] || o.labels[dataClassLabel] == "money" || o.labels[dataClassLabel] == "evidence" {
			for _, key := range []string{"retention.ms", "retention.bytes"} {
				if n, ok := num(cfg[key]); !ok || n != -1 {
					s.add(o, "money topic %s: config %s is %s, want -1 (keep everything: the log is the source of truth)", name, key, orDefault(str(cfg[key]), "not set"))
				}
			}
			if strings.Contains(str(cfg["cleanup.policy"]), "compact") {
				s.add(o, "money topic %s: cleanup.policy %s would delete events; want delete with unlimited retention", name, str(cfg["cleanup.policy"]))
			}
		}
	}
	// Co-partitioning.
	var counts []string
	first := int64(-1)
	same := true
	for _, t := range coPartitioned {
		o, ok := byName[t]
		if !ok {
			continue
		}
		n, _ := num(get(o.Obj, "spec", "partitions"))
		counts = append(counts, fmt.Sprintf("%s=%d", t, n))
		if first < 0 {
			first = n
		} else if n != first {
			same = false
		}
	}
	if !same {
		for _, t := range coPartitioned {
			if o, ok := byName[t]; ok {
				s.add(o, "co-partitioned topics (keyed by card_id) must have the same partition count: %s", strings.Join(counts, ", "))
			}
		}
	}
	// Every topic exists where the cluster is defined.
	if len(kafkas) > 0 {
		var missing []string
		for _, t := range allTopics {
			if _, ok := byName[t]; !ok {
				missing = append(missing, t)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			s.add(kafkas[0], "no KafkaTopic for %s in this kustomization", strings.Join(missing, ", "))
		}
	}
}

// ---------------------------------------------------------------------------
// Prometheus rules

func checkPrometheusRule(s *sink, o *object, pr *monitoringv1.PrometheusRule) {
	if len(pr.Spec.Groups) == 0 {
		s.add(o, "spec.groups is empty")
	}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			switch {
			case r.Record != "" && !strings.Contains(r.Record, "tongka_"):
				s.add(o, "group %s: recording rule %s: name must contain the tongka_ metric it aggregates (level:tongka_metric:operations)", g.Name, r.Record)
			case r.Alert != "" && !strings.HasPrefix(r.Alert, "Tongka"):
				s.add(o, "group %s: alert %s: name must start with Tongka", g.Name, r.Alert)
			case r.Alert != "" && r.Labels["severity"] == "":
				s.add(o, "group %s: alert %s has no severity label", g.Name, r.Alert)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// helpers for unstructured objects

func get(m interface{}, path ...string) interface{} {
	cur := m
	for _, p := range path {
		mm, ok := cur.(map[string]interface{})
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// num reads an integer written as a YAML number or a string.
func num(v interface{}) (int64, bool) {
	switch v := v.(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case float64:
		if v == float64(int64(v)) {
			return int64(v), true
		}
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func str(v interface{}) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10)
		}
	}
	return fmt.Sprint(v)
}
