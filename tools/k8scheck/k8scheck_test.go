package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Strimzi CRDs, from $K8SCHECK_CRDS or fetch_crds.sh (cached after the
// first run).
var crdDir string

func TestMain(m *testing.M) {
	crdDir = os.Getenv("K8SCHECK_CRDS")
	if crdDir == "" {
		cmd := exec.Command("bash", "fetch_crds.sh")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "fetch_crds.sh failed: %v\n", err)
			os.Exit(1)
		}
		crdDir = strings.TrimSpace(string(out))
	}
	os.Exit(m.Run())
}

const (
	deployDir  = "../../deploy/k8s"
	apiService = "testdata/api-service"
)

func newTestChecker(t *testing.T, opts Options) *Checker {
	t.Helper()
	if opts.Namespace == "" {
		opts.Namespace = "tongka"
	}
	c, err := NewChecker(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func problemsText(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String())
		b.WriteString("\n")
	}
	return b.String()
}

// The real manifests pass.
func TestDeployManifestsPass(t *testing.T) {
	c := newTestChecker(t, Options{CRDDir: crdDir, RulesOut: t.TempDir()})
	rep, err := c.Check([]string{deployDir})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("deploy/k8s has problems:\n%s", problemsText(rep.Problems))
	}
	want := map[string]bool{"base": false, "sample": false, "monitoring": false}
	for _, k := range rep.Kustomizations {
		want[filepath.Base(k)] = true
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("kustomization %s was not checked (checked: %v)", k, rep.Kustomizations)
		}
	}
	if len(rep.RuleFiles) != 1 {
		t.Errorf("want 1 rule file written, got %v", rep.RuleFiles)
	}
}

// The fixture of a service with a gRPC API (components tongka-service and
// tongka-grpc-api) passes, and gets the port grpc and its certificate.
func TestAPIServiceFixturePasses(t *testing.T) {
	c := newTestChecker(t, Options{CRDDir: crdDir})
	rep, err := c.Check([]string{apiService})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("%s has problems:\n%s", apiService, problemsText(rep.Problems))
	}
	objs, err := render(apiService)
	if err != nil {
		t.Fatal(err)
	}
	var sawSecret, sawServicePort bool
	for _, r := range objs {
		switch r.Obj["kind"] {
		case "StatefulSet":
			for _, v := range m(r.Obj, "spec", "template", "spec", "volumes").([]interface{}) {
				if v := v.(map[string]interface{}); v["name"] == "grpc-tls" {
					sawSecret = m(v, "secret", "secretName") == "api-example-grpc-tls"
				}
			}
		case "Service":
			for _, p := range m(r.Obj, "spec", "ports").([]interface{}) {
				if p := p.(map[string]interface{}); p["name"] == "grpc" {
					sawServicePort = true
				}
			}
		}
	}
	if !sawSecret || !sawServicePort {
		t.Errorf("tongka-grpc-api: grpc-tls secret named after the service: %v, Service port grpc: %v", sawSecret, sawServicePort)
	}
}

// Each broken fixture is rejected, with the file and object named.
func TestBrokenFixturesRejected(t *testing.T) {
	cases := []struct {
		dir  string
		want []string // substrings of problem lines
	}{
		{"testdata/broken-unknown-field", []string{
			`testdata/broken-unknown-field/statefulset.yaml: StatefulSet tongka/typo: strict decoding: unknown field "spec.template.spec.containers[0].resource"`,
			`StatefulSet tongka/typo: strict decoding: unknown field "spec.template.spec.containers[0].readinessprobe"`,
			`StatefulSet tongka/typo: container "server" has no resources.limits.memory`,
			`StatefulSet tongka/typo: container "server" has no readinessProbe (want httpGet /readyz on port "metrics")`,
		}},
		{"testdata/broken-no-vct", []string{
			`testdata/broken-no-vct/statefulset.yaml: StatefulSet tongka/novolume: spec.volumeClaimTemplates is empty`,
			`--state_dir=/var/lib/tongka is not the mount path of a volumeClaimTemplate`,
			`--replica_count is 3 but spec.replicas is 4`,
		}},
		{"testdata/broken-probes", []string{
			`testdata/broken-probes/statefulset.yaml: StatefulSet tongka/badprobes: container "server" readinessProbe is not an httpGet probe (want httpGet /readyz on port "metrics"): gRPC probes cannot present the client certificate`,
			`StatefulSet tongka/badprobes: container "server" livenessProbe gets path "/readyz", want "/healthz"`,
			`StatefulSet tongka/badprobes: container "server" startupProbe probes port "7000", want the port named "metrics"`,
			`StatefulSet tongka/badprobes: container "server" startupProbe uses scheme HTTPS, want HTTP`,
		}},
		{"testdata/broken-money-topic", []string{
			`testdata/broken-money-topic/topics.yaml: KafkaTopic tongka/tongka-txn: money topic tongka.txn: config retention.ms is 604800000, want -1`,
			`KafkaTopic tongka/tongka-txn: money topic tongka.txn: config retention.bytes is not set, want -1`,
			`KafkaTopic tongka/tongka-cards: money topic tongka.cards: cleanup.policy compact`,
			`KafkaTopic tongka/tongka-cards: topic tongka.cards: spec.replicas is 2, want 3`,
			`co-partitioned topics (keyed by card_id) must have the same partition count: tongka.txn=48, tongka.cards=24`,
		}},
		{"testdata/broken-strimzi-schema", []string{
			`testdata/broken-strimzi-schema/strimzi.yaml: KafkaTopic tongka/tongka-subsidy: strict decoding: unknown field "spec.partitons"`,
			`KafkaNodePool tongka/broker: schema: spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer`,
			`KafkaNodePool tongka/broker: schema: spec.roles[0]: Unsupported value: "brokers"`,
		}},
	}
	c := newTestChecker(t, Options{CRDDir: crdDir})
	for _, tc := range cases {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			rep, err := c.Check([]string{tc.dir})
			if err != nil {
				t.Fatal(err)
			}
			text := problemsText(rep.Problems)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing problem %q; got:\n%s", w, text)
				}
			}
		})
	}
}

// The command's exit status: 0 for deploy/k8s, 1 for a broken fixture, and
// one line per problem with file and object.
func TestRunExitStatus(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run([]string{"-crds", crdDir, deployDir}, &out, &errb); rc != 0 {
		t.Fatalf("run on deploy/k8s: exit %d\n%s%s", rc, out.String(), errb.String())
	}
	out.Reset()
	if rc := run([]string{"-crds", crdDir, "testdata/broken-no-vct"}, &out, &errb); rc != 1 {
		t.Fatalf("run on broken-no-vct: exit %d, want 1\n%s%s", rc, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "testdata/broken-no-vct/statefulset.yaml: StatefulSet tongka/novolume: spec.volumeClaimTemplates is empty") {
		t.Errorf("output does not name the file and object:\n%s", out.String())
	}
	// Strimzi resources without CRDs cannot pass.
	out.Reset()
	if rc := run([]string{"-crds", "", deployDir + "/base"}, &out, &errb); rc != 1 || !strings.Contains(out.String(), "no Strimzi CRDs loaded") {
		t.Errorf("run without CRDs: exit %d, want 1 and 'no Strimzi CRDs loaded':\n%s", rc, out.String())
	}
	if rc := run([]string{"-crds", crdDir, "testdata/does-not-exist"}, &out, &errb); rc != 2 {
		t.Errorf("run on a missing path: exit %d, want 2", rc)
	}
}

// mutate renders dir, applies f to the object of kind/name, and checks.
func mutate(t *testing.T, c *Checker, dir, kind, name string, f func(o map[string]interface{}) bool) []Problem {
	t.Helper()
	objs, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	var kept []rendered
	found := false
	for _, r := range objs {
		md := r.Obj["metadata"].(map[string]interface{})
		if r.Obj["kind"] == kind && md["name"] == name {
			found = true
			// Work on a deep copy.
			b, _ := json.Marshal(r.Obj)
			var cp map[string]interface{}
			_ = json.Unmarshal(b, &cp)
			if !f(cp) {
				continue // f asked to drop the object
			}
			r.Obj = cp
		}
		kept = append(kept, r)
	}
	if !found {
		t.Fatalf("%s %s not found in %s", kind, name, dir)
	}
	probs, _, err := c.checkObjects(dir, kept)
	if err != nil {
		t.Fatal(err)
	}
	return probs
}

func m(v interface{}, path ...interface{}) interface{} {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			v = v.(map[string]interface{})[p]
		case int:
			v = v.([]interface{})[p]
		}
	}
	return v
}

func mm(v interface{}, path ...interface{}) map[string]interface{} {
	return m(v, path...).(map[string]interface{})
}

// Each convention, broken one at a time on the real sample and base (and the
// API service fixture, for what only a service with a gRPC API has).
func TestConventionsOneByOne(t *testing.T) {
	c := newTestChecker(t, Options{CRDDir: crdDir})
	sample, base := deployDir+"/sample", deployDir+"/base"
	server := func(o map[string]interface{}) map[string]interface{} {
		return mm(o, "spec", "template", "spec", "containers", 0)
	}
	cases := []struct {
		name, dir, kind, obj string
		f                    func(o map[string]interface{}) bool
		want                 string
	}{
		{"dev auth", apiService, "StatefulSet", "api-example", func(o map[string]interface{}) bool {
			args := server(o)["args"].([]interface{})
			for i, a := range args {
				if a == "--auth=mtls" {
					args[i] = "--auth=dev"
				}
			}
			return true
		}, `container "server": --auth="dev", want --auth=mtls (callers are identified by client certificates; --auth=dev is for development only)`},
		{"auth mode not said", apiService, "StatefulSet", "api-example", func(o map[string]interface{}) bool {
			args := server(o)["args"].([]interface{})
			kept := []interface{}{}
			for _, a := range args {
				if a != "--auth=mtls" {
					kept = append(kept, a)
				}
			}
			server(o)["args"] = kept
			return true
		}, `container "server": --auth="", want --auth=mtls (callers are identified by client certificates; --auth=dev is for development only)`},
		{"dev token secret", apiService, "StatefulSet", "api-example", func(o map[string]interface{}) bool {
			server(o)["args"] = append(server(o)["args"].([]interface{}), "--dev_token_secret_file=/etc/secret")
			return true
		}, `container "server" passes --dev_token_secret_file: development tokens are not for a cluster`},
		{"grpc readiness probe", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			server(o)["readinessProbe"] = map[string]interface{}{"grpc": map[string]interface{}{"port": 7000, "service": "readiness"}}
			return true
		}, `container "server" readinessProbe is not an httpGet probe (want httpGet /readyz on port "metrics"): gRPC probes cannot present the client certificate`},
		{"grpc and httpGet liveness probe", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			mm(server(o), "livenessProbe")["grpc"] = map[string]interface{}{"port": 7000}
			return true
		}, `container "server" livenessProbe has more than one handler (httpGet, grpc)`},
		{"tcp startup probe", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			server(o)["startupProbe"] = map[string]interface{}{"tcpSocket": map[string]interface{}{"port": "metrics"}}
			return true
		}, `container "server" startupProbe is not an httpGet probe (want httpGet /healthz on port "metrics")`},
		{"readiness on /healthz", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			mm(server(o), "readinessProbe", "httpGet")["path"] = "/healthz"
			return true
		}, `container "server" readinessProbe gets path "/healthz", want "/readyz"`},
		{"liveness on /readyz", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			mm(server(o), "livenessProbe", "httpGet")["path"] = "/readyz"
			return true
		}, `container "server" livenessProbe gets path "/readyz", want "/healthz"`},
		{"startup probe on /metrics", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			mm(server(o), "startupProbe", "httpGet")["path"] = "/metrics"
			return true
		}, `container "server" startupProbe gets path "/metrics", want "/healthz"`},
		{"readiness on another port", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			mm(server(o), "readinessProbe", "httpGet")["port"] = 8080
			return true
		}, `container "server" readinessProbe probes port "8080", want the port named "metrics"`},
		{"readiness on the grpc port of an API service", apiService, "StatefulSet", "api-example", func(o map[string]interface{}) bool {
			mm(server(o), "readinessProbe", "httpGet")["port"] = "grpc"
			return true
		}, `container "server" readinessProbe probes port "grpc", want the port named "metrics"`},
		{"https liveness", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			mm(server(o), "livenessProbe", "httpGet")["scheme"] = "HTTPS"
			return true
		}, `container "server" livenessProbe uses scheme HTTPS, want HTTP`},
		{"no startup probe", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			delete(server(o), "startupProbe")
			return true
		}, `container "server" has no startupProbe (want httpGet /healthz on port "metrics")`},
		{"no metrics port", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			server(o)["ports"] = []interface{}{}
			return true
		}, `container "server" has no port named "metrics"`},
		{"no server container", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			server(o)["name"] = "app"
			return true
		}, `no container named "server"`},
		{"grpc port not in the Service", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			server(o)["ports"] = append(server(o)["ports"].([]interface{}), map[string]interface{}{"name": "grpc", "containerPort": 7000})
			return true
		}, `Service tongka/tongka-sample: no port named "grpc", but the container "server" has one`},
		{"grpc Service port without a container port", sample, "Service", "tongka-sample", func(o map[string]interface{}) bool {
			mm(o, "spec")["ports"] = append(mm(o, "spec")["ports"].([]interface{}), map[string]interface{}{"name": "grpc", "port": 7000, "targetPort": "grpc"})
			return true
		}, `Service tongka/tongka-sample: port "grpc" published, but the container "server" has no port named "grpc"`},
		{"API service without the grpc Service port", apiService, "Service", "api-example", func(o map[string]interface{}) bool {
			var kept []interface{}
			for _, p := range mm(o, "spec")["ports"].([]interface{}) {
				if p.(map[string]interface{})["name"] != "grpc" {
					kept = append(kept, p)
				}
			}
			mm(o, "spec")["ports"] = kept
			return true
		}, `Service tongka/api-example: no port named "grpc", but the container "server" has one`},
		{"no metrics Service port", sample, "Service", "tongka-sample", func(o map[string]interface{}) bool {
			mm(o, "spec")["ports"] = []interface{}{}
			return true
		}, `Service tongka/tongka-sample: no port named "metrics"`},
		{"root", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			mm(o, "spec", "template", "spec", "securityContext")["runAsNonRoot"] = false
			delete(mm(server(o), "securityContext"), "runAsNonRoot")
			return true
		}, `container "server" may run as root`},
		{"writable root fs", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			mm(server(o), "securityContext")["readOnlyRootFilesystem"] = false
			return true
		}, `readOnlyRootFilesystem must be true`},
		{"no limits", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			delete(mm(server(o), "resources"), "limits")
			return true
		}, `container "server" has no resources.limits.cpu`},
		{"ordered start", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			mm(o, "spec")["podManagementPolicy"] = "OrderedReady"
			return true
		}, `spec.podManagementPolicy is "OrderedReady", want Parallel`},
		{"case-different field", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			s := server(o)
			s["Resources"] = s["resources"]
			delete(s, "resources")
			return true
		}, `unknown field "spec.template.spec.containers[0].Resources"`},
		{"replica index by hand", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			args := server(o)["args"].([]interface{})
			for i, a := range args {
				if strings.HasPrefix(a.(string), "--replica_index=") {
					args[i] = "--replica_index=0"
				}
			}
			return true
		}, `--replica_index=0 must come from the downward API`},
		{"no PDB", sample, "PodDisruptionBudget", "tongka-sample", func(o map[string]interface{}) bool {
			return false
		}, `no PodDisruptionBudget in this kustomization selects its pods`},
		{"not headless", sample, "Service", "tongka-sample", func(o map[string]interface{}) bool {
			delete(mm(o, "spec"), "clusterIP")
			return true
		}, `Service tongka/tongka-sample: spec.clusterIP must be None`},
		{"no scrape annotation", sample, "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
			delete(mm(o, "spec", "template", "metadata", "annotations"), "prometheus.io/scrape")
			return true
		}, `annotation prometheus.io/scrape is "", want "true"`},
		{"wrong namespace", sample, "Service", "tongka-sample", func(o map[string]interface{}) bool {
			mm(o, "metadata")["namespace"] = "default"
			return true
		}, `metadata.namespace is "default", want "tongka"`},
		{"unclean leader election", base, "Kafka", "tongka", func(o map[string]interface{}) bool {
			mm(o, "spec", "kafka", "config")["unclean.leader.election.enable"] = true
			return true
		}, `spec.kafka.config.unclean.leader.election.enable is true, want false`},
		{"plain listener", base, "Kafka", "tongka", func(o map[string]interface{}) bool {
			l := mm(o, "spec", "kafka", "listeners", 0)
			l["tls"] = false
			delete(l, "authentication")
			return true
		}, `listener "tls": authentication.type must be tls`},
		{"unknown Kafka field", base, "Kafka", "tongka", func(o map[string]interface{}) bool {
			mm(o, "spec", "kafka")["replica"] = 3
			return true
		}, `Kafka tongka/tongka: strict decoding: unknown field "spec.kafka.replica"`},
		{"two controllers", base, "KafkaNodePool", "controller", func(o map[string]interface{}) bool {
			mm(o, "spec")["replicas"] = 2
			return true
		}, `its node pools have 2 controller(s), want an odd number >= 3`},
		{"delete claim", base, "KafkaNodePool", "broker", func(o map[string]interface{}) bool {
			mm(o, "spec", "storage", "volumes", 0)["deleteClaim"] = true
			return true
		}, `KafkaNodePool tongka/broker: spec.storage: deleteClaim must be false`},
		{"missing topic", base, "KafkaTopic", "tongka-subsidy", func(o map[string]interface{}) bool {
			return false
		}, `Kafka tongka/tongka: no KafkaTopic for tongka.subsidy`},
		{"settlement retention", base, "KafkaTopic", "tongka-settlement", func(o map[string]interface{}) bool {
			mm(o, "spec", "config")["retention.ms"] = 86400000
			return true
		}, `money topic tongka.settlement: config retention.ms is 86400000, want -1`},
		{"alerts partitions", base, "KafkaTopic", "tongka-alerts", func(o map[string]interface{}) bool {
			mm(o, "spec")["partitions"] = 12
			return true
		}, `co-partitioned topics (keyed by card_id) must have the same partition count: tongka.txn=48, tongka.txn.conflicts=48, tongka.cards=48, tongka.alerts=12`},
		{"min ISR", base, "KafkaTopic", "tongka-alerts", func(o map[string]interface{}) bool {
			delete(mm(o, "spec", "config"), "min.insync.replicas")
			return true
		}, `topic tongka.alerts: config min.insync.replicas is not set, want 2`},
		{"misspelled rule field", deployDir + "/monitoring", "PrometheusRule", "tongka", func(o map[string]interface{}) bool {
			r := mm(o, "spec", "groups", 0, "rules", 0)
			r["recrod"] = r["record"]
			delete(r, "record")
			return true
		}, `PrometheusRule tongka/tongka: strict decoding: unknown field "spec.groups[0].rules[0].recrod"`},
		{"alert without severity", deployDir + "/monitoring", "PrometheusRule", "tongka", func(o map[string]interface{}) bool {
			delete(mm(o, "spec", "groups", 1, "rules", 0), "labels")
			return true
		}, `alert TongkaConsumerLagHigh has no severity label`},
		{"misspelled certificate field", apiService, "Certificate", "api-example-grpc-tls", func(o map[string]interface{}) bool {
			mm(o, "spec")["dnsName"] = []interface{}{"x"}
			return true
		}, `Certificate tongka/api-example-grpc-tls: strict decoding: unknown field "spec.dnsName"`},
		{"KafkaUser without mTLS", sample, "KafkaUser", "tongka-sample", func(o map[string]interface{}) bool {
			mm(o, "spec", "authentication")["type"] = "scram-sha-512"
			return true
		}, `spec.authentication.type must be tls`},
		{"unknown kind", base, "Namespace", "tongka", func(o map[string]interface{}) bool {
			o["apiVersion"] = "example.com/v1"
			return true
		}, `no schema known for example.com/v1, Kind=Namespace`},
		{"unknown field in a Namespace", base, "Namespace", "tongka", func(o map[string]interface{}) bool {
			o["spec"] = map[string]interface{}{"finalizer": []interface{}{"x"}}
			return true
		}, `unknown field "spec.finalizer"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			probs := mutate(t, c, tc.dir, tc.kind, tc.obj, tc.f)
			text := problemsText(probs)
			if !strings.Contains(text, tc.want) {
				t.Errorf("missing problem %q; got:\n%s", tc.want, text)
			}
		})
	}
}

// A probe may name the metrics port by number as well as by name.
func TestProbeOnMetricsPortNumber(t *testing.T) {
	c := newTestChecker(t, Options{CRDDir: crdDir})
	probs := mutate(t, c, deployDir+"/sample", "StatefulSet", "tongka-sample", func(o map[string]interface{}) bool {
		mm(o, "spec", "template", "spec", "containers", 0, "readinessProbe", "httpGet")["port"] = 9100
		return true
	})
	if len(probs) > 0 {
		t.Errorf("readiness probe on port 9100 (the metrics port) rejected:\n%s", problemsText(probs))
	}
}
