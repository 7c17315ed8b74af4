// Package domsed applies domsed Mutations (apps.dominodatalab.com/v1alpha1)
// to pod specs, for tests that must run workload pods shaped exactly as a
// Domino cluster's admission webhook would shape them. It follows the
// operations' documented semantics (../shared/reference/v1.8-chart.md,
// "domsed Mutation") for the subset the project's Mutations use; anything
// else is an error, never silently ignored. docs/design/domsed.md states
// where the CRD is silent and what this package assumes.
package domsed

import (
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// Mutation is a domsed Mutation.
type Mutation struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Rules      []Rule            `json:"rules"`
}

// Rule selects pods and carries operations.
type Rule struct {
	LabelSelectors []string `json:"labelSelectors,omitempty"`
	MatchBuilds    *bool    `json:"matchBuilds,omitempty"`
	Enabled        *bool    `json:"enabled,omitempty"`

	ModifyLabel        *ModifyLabel        `json:"modifyLabel,omitempty"`
	InsertVolumes      []corev1.Volume     `json:"insertVolumes,omitempty"`
	InsertContainer    *InsertContainer    `json:"insertContainer,omitempty"`
	InsertVolumeMounts *InsertVolumeMounts `json:"insertVolumeMounts,omitempty"`
	ModifyEnv          *ModifyEnv          `json:"modifyEnv,omitempty"`
	// ModifySecurityContext sets pod security context fields.
	ModifySecurityContext *ModifySecurityContext `json:"modifySecurityContext,omitempty"`
	// CloudWorkloadIdentity runs the pod as its user's service account;
	// Apply refuses it (the user is not known here): tests apply the rules
	// they can and set the service account themselves.
	CloudWorkloadIdentity *CloudWorkloadIdentity `json:"cloudWorkloadIdentity,omitempty"`
}

// ModifySecurityContext sets the fields of context in the pod's security
// context, leaving the others.
type ModifySecurityContext struct {
	Context corev1.PodSecurityContext `json:"context"`
}

// CloudWorkloadIdentity is domsed's per-user service account operation.
type CloudWorkloadIdentity struct {
	CloudType       string         `json:"cloud_type"`
	DefaultSA       string         `json:"default_sa"`
	UserMappings    map[string]any `json:"user_mappings,omitempty"`
	AssumeSAMapping bool           `json:"assume_sa_mapping,omitempty"`
}

// ModifyLabel sets a label.
type ModifyLabel struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// InsertContainer adds a container.
type InsertContainer struct {
	ContainerType string           `json:"containerType"` // app or init
	Spec          corev1.Container `json:"spec"`
}

// InsertVolumeMounts adds mounts to containers.
type InsertVolumeMounts struct {
	ContainerSelector []string             `json:"containerSelector,omitempty"`
	VolumeMounts      []corev1.VolumeMount `json:"volumeMounts"`
}

// ModifyEnv sets environment variables of containers.
type ModifyEnv struct {
	ContainerSelector []string               `json:"containerSelector,omitempty"`
	Env               []corev1.EnvVar        `json:"env"`
	EnvFrom           []corev1.EnvFromSource `json:"envFrom,omitempty"`
}

// Parse decodes one Mutation, refusing fields it does not know (an
// operation this package would otherwise ignore).
func Parse(doc []byte) (Mutation, error) {
	var m Mutation
	if err := yaml.UnmarshalStrict(doc, &m); err != nil {
		return Mutation{}, fmt.Errorf("domsed: %w", err)
	}
	if m.APIVersion != "apps.dominodatalab.com/v1alpha1" || m.Kind != "Mutation" {
		return Mutation{}, fmt.Errorf("domsed: not a Mutation: %s/%s", m.APIVersion, m.Kind)
	}
	return m, nil
}

// BuildLabel marks Domino's image-build pods, which rules skip unless
// matchBuilds is true.
const BuildLabel = "dominodatalab.com/workload-type=ImageBuild"

// Apply runs every rule of m, in order, on pod. A rule's selectors see the
// pod as the earlier rules left it (labels they set, containers they
// inserted).
func (m Mutation) Apply(pod *corev1.Pod) error {
	for i, r := range m.Rules {
		ok, err := r.matches(pod)
		if err != nil {
			return fmt.Errorf("domsed: %s rule %d: %w", m.Metadata.Name, i+1, err)
		}
		if ok {
			if err := r.apply(pod); err != nil {
				return fmt.Errorf("domsed: %s rule %d: %w", m.Metadata.Name, i+1, err)
			}
		}
	}
	return nil
}

func (r Rule) matches(pod *corev1.Pod) (bool, error) {
	if r.Enabled != nil && !*r.Enabled {
		return false, nil
	}
	set := labels.Set(pod.Labels)
	build, _ := labels.Parse(BuildLabel)
	if build.Matches(set) && (r.MatchBuilds == nil || !*r.MatchBuilds) {
		return false, nil
	}
	for _, s := range r.LabelSelectors {
		sel, err := labels.Parse(s)
		if err != nil {
			return false, fmt.Errorf("label selector %q: %w", s, err)
		}
		if !sel.Matches(set) {
			return false, nil
		}
	}
	return true, nil
}

// apply runs the rule's operations in the order the CRD lists them.
func (r Rule) apply(pod *corev1.Pod) error {
	if r.CloudWorkloadIdentity != nil {
		return fmt.Errorf("cloudWorkloadIdentity: the user's service account is not known to this package")
	}
	if sc := r.ModifySecurityContext; sc != nil {
		if pod.Spec.SecurityContext == nil {
			pod.Spec.SecurityContext = &corev1.PodSecurityContext{}
		}
		if err := mergeSecurityContext(pod.Spec.SecurityContext, sc.Context); err != nil {
			return err
		}
	}
	if l := r.ModifyLabel; l != nil {
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		pod.Labels[l.Key] = l.Value
	}
	for _, v := range r.InsertVolumes {
		if slices.ContainsFunc(pod.Spec.Volumes, func(x corev1.Volume) bool { return x.Name == v.Name }) {
			return fmt.Errorf("volume %s is already in the pod", v.Name)
		}
		pod.Spec.Volumes = append(pod.Spec.Volumes, v)
	}
	if c := r.InsertContainer; c != nil {
		switch c.ContainerType {
		case "app":
			pod.Spec.Containers = append(pod.Spec.Containers, c.Spec)
		case "init":
			pod.Spec.InitContainers = append(pod.Spec.InitContainers, c.Spec)
		default:
			return fmt.Errorf("insertContainer: containerType %q is neither app nor init", c.ContainerType)
		}
	}
	if vm := r.InsertVolumeMounts; vm != nil {
		for _, c := range selected(pod, vm.ContainerSelector) {
			for _, m := range vm.VolumeMounts {
				if slices.ContainsFunc(c.VolumeMounts, func(x corev1.VolumeMount) bool { return x.MountPath == m.MountPath }) {
					return fmt.Errorf("container %s already mounts %s", c.Name, m.MountPath)
				}
				c.VolumeMounts = append(c.VolumeMounts, m)
			}
		}
	}
	if e := r.ModifyEnv; e != nil {
		for _, c := range selected(pod, e.ContainerSelector) {
			for _, v := range e.Env {
				if i := slices.IndexFunc(c.Env, func(x corev1.EnvVar) bool { return x.Name == v.Name }); i >= 0 {
					c.Env[i] = v
				} else {
					c.Env = append(c.Env, v)
				}
			}
			c.EnvFrom = append(c.EnvFrom, e.EnvFrom...)
		}
	}
	return nil
}

// selected returns the app containers a containerSelector names, or all
// app containers without one.
func selected(pod *corev1.Pod, names []string) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if len(names) == 0 || slices.Contains(names, c.Name) {
			out = append(out, c)
		}
	}
	return out
}

// mergeSecurityContext sets in dst the fields set in src.
func mergeSecurityContext(dst *corev1.PodSecurityContext, src corev1.PodSecurityContext) error {
	b, err := json.Marshal(src)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}
