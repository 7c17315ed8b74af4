{{- define "irsa.name" -}}{{ .Values.env.name }}{{- end -}}
{{- define "irsa.field" -}}{{ .Values.env.namespace.field }}{{- end -}}
{{- define "irsa.compute" -}}{{ .Values.env.namespace.compute }}{{- end -}}
{{- define "irsa.platform" -}}{{ .Values.env.namespace.platform }}{{- end -}}

{{- define "irsa.labels" -}}
app: {{ include "irsa.name" . }}
app.kubernetes.io/name: irsa-broker
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "irsa.selector" -}}
app: {{ include "irsa.name" . }}
{{- end -}}

{{- /* image NAME VERSION: v1.8's <repository>/<container>:<version>. */ -}}
{{- define "irsa.image" -}}
{{- $ := index . 0 -}}{{- $container := index . 1 -}}{{- $version := index . 2 -}}
{{- $tag := $version | default $.Chart.AppVersion -}}
{{- if $.Values.image.repository -}}{{ printf "%s/%s:%s" (trimSuffix "/" $.Values.image.repository) $container $tag }}{{- else -}}{{ printf "%s:%s" $container $tag }}{{- end -}}
{{- end -}}

{{- /* projectImage NAME: this project's image NAME from broker.images.registry and .tag. */ -}}
{{- define "irsa.projectImage" -}}
{{- $ := index . 0 -}}{{- $name := index . 1 -}}
{{- $tag := $.Values.broker.images.tag | default $.Chart.AppVersion -}}
{{- with $.Values.broker.images.registry -}}{{ printf "%s/%s:%s" (trimSuffix "/" .) $name $tag }}{{- else -}}{{ printf "%s:%s" $name $tag }}{{- end -}}
{{- end -}}

{{- /* image of a component: broker.images.<component>, else this project's image
     when broker.images.registry or .tag is set, else v1.8's image.* keys. */ -}}
{{- define "irsa.componentImage" -}}
{{- $ := index . 0 -}}{{- $component := index . 1 -}}{{- $project := index . 2 -}}{{- $container := index . 3 -}}{{- $version := index . 4 -}}
{{- $images := $.Values.broker.images -}}
{{- if index $images $component -}}{{ index $images $component }}
{{- else if or $images.registry $images.tag -}}{{ include "irsa.projectImage" (list $ $project) }}
{{- else -}}{{ include "irsa.image" (list $ $container $version) }}
{{- end -}}
{{- end -}}

{{- define "irsa.brokerImage" -}}
{{- include "irsa.componentImage" (list . "broker" "irsa-broker" .Values.image.serverContainer .Values.image.serverAppVersion) -}}
{{- end -}}

{{- define "irsa.sidecarImage" -}}
{{- include "irsa.componentImage" (list . "sidecar" "irsa-sidecar" .Values.image.clientContainer .Values.image.clientAppVersion) -}}
{{- end -}}

{{- define "irsa.partition" -}}{{ ternary "aws-us-gov" "aws" .Values.env.govcloud }}{{- end -}}

{{- define "irsa.defaultRegion" -}}{{ .Values.env.aws_default_region | default .Values.env.aws_region }}{{- end -}}

{{- define "irsa.endpoint" -}}https://{{ .Values.env.service }}.{{ include "irsa.field" . }}/map_iam_roles_to_pod_sa{{- end -}}
