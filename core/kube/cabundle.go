package kube

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/irsa-broker/irsa-broker/internal/filewatch"
)

// KeyCABundle is the key of the published CA bundle ConfigMap.
const KeyCABundle = "ca.crt"

// labelManagedBy marks the ConfigMaps the broker writes.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "irsa-broker"
)

// maxCABundle bounds the bundle (a ConfigMap holds at most 1 MiB).
const maxCABundle = 256 << 10

// CABundleOptions configure PublishCABundle.
type CABundleOptions struct {
	// Namespace and Name of the ConfigMap (the compute namespace).
	Namespace, Name string
	// File holds the PEM certificates to publish: the CA of the broker's
	// serving certificate (ca.crt of cert-manager's secret).
	File string
	// Recheck is how often the ConfigMap is compared with the file even
	// without a change (someone deleted or edited it); default 10 s.
	Recheck time.Duration
	// Registerer, if set, gets irsa_ca_bundle_published.
	Registerer prometheus.Registerer
	Logger     hclog.Logger
}

// PublishCABundle keeps the ConfigMap holding File's certificates (and
// nothing else: a private key in File is refused) until ctx ends, so that
// workloads can trust the broker without the serving secret, and its key,
// being copied to their namespace, and nothing is done by hand when the
// certificate is renewed. The name is the broker's (the chart reserves it,
// and RBAC lets the broker update only that ConfigMap): whatever else is
// found there, whoever wrote it, is replaced at the next check, so a
// compute-namespace user cannot plant a CA that workloads would trust.
func PublishCABundle(ctx context.Context, cs kubernetes.Interface, o CABundleOptions) error {
	if o.Namespace == "" || o.Name == "" || o.File == "" {
		return errors.New("kube: the CA bundle needs a namespace, a name and a file")
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Recheck <= 0 {
		o.Recheck = 10 * time.Second
	}
	published := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "irsa_ca_bundle_published",
		Help: "1 when the last check found the CA bundle ConfigMap holding the broker's CA (or wrote it), 0 when it could not.",
	})
	if o.Registerer != nil {
		if err := o.Registerer.Register(published); err != nil {
			return err
		}
	}
	log := o.Logger.Named("ca-bundle").With("configmap", o.Namespace+"/"+o.Name, "file", o.File)
	w, err := filewatch.New([]string{o.File}, filewatch.Options{Logger: log})
	if err != nil {
		return err
	}
	changed := make(chan struct{}, 1)
	go w.Run(ctx, func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	tick := time.NewTicker(o.Recheck)
	defer tick.Stop()
	var (
		lastErr string // logged once until it changes
		mine    string // the bundle this broker last wrote or found in place
	)
	for {
		err := publishCABundle(ctx, cs, o, &mine, log)
		published.Set(map[bool]float64{true: 1, false: 0}[err == nil])
		if err != nil && ctx.Err() == nil {
			if err.Error() != lastErr {
				log.Error("cannot publish the CA bundle; workloads may not verify the broker", "error", err)
			}
			lastErr = err.Error()
		} else if err == nil && lastErr != "" {
			log.Info("CA bundle published")
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick.C:
		}
	}
}

// publishCABundle writes the file's certificates to the ConfigMap if it
// holds anything else. mine is the bundle last written or found in place:
// other content means someone else wrote it, which is logged.
func publishCABundle(ctx context.Context, cs kubernetes.Interface, o CABundleOptions, mine *string, log hclog.Logger) error {
	raw, err := os.ReadFile(o.File)
	if err != nil {
		return err
	}
	bundle, err := CABundle(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", o.File, err)
	}
	cms := cs.CoreV1().ConfigMaps(o.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cms.Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: map[string]string{labelManagedBy: managedBy}},
				Data:       map[string]string{KeyCABundle: bundle},
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("configmaps"), o.Name, err)
			}
			if err == nil {
				*mine = bundle
			}
			return err
		}
		if err != nil {
			return err
		}
		ours := cm.Labels[labelManagedBy] == managedBy && len(cm.Data) == 1 && len(cm.BinaryData) == 0
		if ours && cm.Data[KeyCABundle] == bundle {
			*mine = bundle
			return nil
		}
		if !ours || cm.Data[KeyCABundle] != *mine {
			log.Warn("the CA bundle ConfigMap held something the broker did not write; replacing it with the broker's CA", "resource_version", cm.ResourceVersion)
		}
		if cm.Labels == nil {
			cm.Labels = map[string]string{}
		}
		cm.Labels[labelManagedBy] = managedBy
		cm.Data, cm.BinaryData = map[string]string{KeyCABundle: bundle}, nil
		if _, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err == nil {
			*mine = bundle
		}
		return err
	})
}

// CABundle returns the certificates of a PEM file, re-encoded, and refuses
// anything else: a private key, a malformed certificate, a file with no
// certificate or larger than 256 KiB.
func CABundle(raw []byte) (string, error) {
	if len(raw) > maxCABundle {
		return "", fmt.Errorf("CA bundle of %d bytes, more than %d", len(raw), maxCABundle)
	}
	var out bytes.Buffer
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return "", fmt.Errorf("refusing to publish a %q PEM block: only certificates", b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return "", fmt.Errorf("malformed certificate: %w", err)
		}
		if err := pem.Encode(&out, &pem.Block{Type: b.Type, Bytes: b.Bytes}); err != nil {
			return "", err
		}
	}
	if out.Len() == 0 {
		return "", errors.New("no PEM certificate")
	}
	return out.String(), nil
}
