// Command vaultk8s_config prints the JSON patch hashicorp/vault-k8s makes for a pod, using the
// injector's own agent package, so a test can hand the exact agent config it generates to a
// real bao agent. Input on stdin: {"pod": <Pod>, "namespace": "...", "address": "...", "image": "..."}.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/hashicorp/vault-k8s/agent-inject/agent"
	corev1 "k8s.io/api/core/v1"
)

type request struct {
	Pod       corev1.Pod `json:"pod"`
	Namespace string     `json:"namespace"`
	Address   string     `json:"address"`
	Image     string     `json:"image"`
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fail("reading request: %v", err)
	}
	pod := req.Pod
	pod.Namespace = req.Namespace
	cfg := agent.AgentConfig{
		Image:                      req.Image,
		Address:                    req.Address,
		AuthType:                   "kubernetes",
		AuthPath:                   "auth/kubernetes",
		Namespace:                  req.Namespace,
		UserID:                     "100",
		GroupID:                    "1000",
		SetSecurityContext:         true,
		DefaultTemplate:            "map",
		ResourceRequestCPU:         "250m",
		ResourceRequestMem:         "64Mi",
		ResourceLimitCPU:           "500m",
		ResourceLimitMem:           "128Mi",
		ExitOnRetryFailure:         true,
		StaticSecretRenderInterval: "",
		AuthMinBackoff:             "",
		AuthMaxBackoff:             "",
	}
	if err := agent.Init(&pod, cfg); err != nil {
		fail("agent.Init: %v", err)
	}
	a, err := agent.New(&pod)
	if err != nil {
		fail("agent.New: %v", err)
	}
	if err := a.Validate(); err != nil {
		fail("agent.Validate: %v", err)
	}
	patch, err := a.Patch()
	if err != nil {
		fail("agent.Patch: %v", err)
	}
	os.Stdout.Write(patch)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vaultk8s_config: "+format+"\n", args...)
	os.Exit(1)
}
