{{/*
Naming, labels and small computed values shared by every template.
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "kubevpc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name used as the prefix of every object: the release name when it already contains the chart
name, else <release>-<chart>; truncated to 63 characters (DNS label).
*/}}
{{- define "kubevpc.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart label value: name-version. */}}
{{- define "kubevpc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "kubevpc.labels" -}}
helm.sh/chart: {{ include "kubevpc.chart" . }}
app.kubernetes.io/name: {{ include "kubevpc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubevpc
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component; call with (dict "root" $ "component" "operator"). */}}
{{- define "kubevpc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubevpc.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of one component's objects: the common labels plus its component label. */}}
{{- define "kubevpc.componentLabels" -}}
{{ include "kubevpc.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The agent pods' label selector as a string, which the operator uses to find agents. */}}
{{- define "kubevpc.agentSelector" -}}
{{- $labels := include "kubevpc.selectorLabels" (dict "root" . "component" "agent") | fromYaml }}
{{- $pairs := list }}
{{- range $key := keys $labels | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $key (get $labels $key)) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* The image reference: repository:tag, or repository@digest when a digest is set. */}}
{{- define "kubevpc.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The per-node agent configuration file inside agent.hostConfigDir. */}}
{{- define "kubevpc.agentConfigFile" -}}
{{- printf "%s/agent.yaml" (trimSuffix "/" .Values.agent.hostConfigDir) }}
{{- end }}

{{/* ServiceAccount names. */}}
{{- define "kubevpc.operatorServiceAccountName" -}}
{{- if .Values.serviceAccount.operator.create }}
{{- default (printf "%s-operator" (include "kubevpc.fullname" .)) .Values.serviceAccount.operator.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.operator.name }}
{{- end }}
{{- end }}

{{- define "kubevpc.agentServiceAccountName" -}}
{{- if .Values.serviceAccount.agent.create }}
{{- default (printf "%s-agent" (include "kubevpc.fullname" .)) .Values.serviceAccount.agent.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.agent.name }}
{{- end }}
{{- end }}

{{/* Name of the ClusterKopfPeering object (unique per release, so two releases never share one). */}}
{{- define "kubevpc.peeringName" -}}
{{- default (include "kubevpc.fullname" .) .Values.operator.peering.name }}
{{- end }}

{{/* Fail early on combinations that would deploy something broken. */}}
{{- define "kubevpc.validate" -}}
{{- if and (gt (int .Values.operator.replicaCount) 1) (not .Values.operator.peering.enabled) }}
{{- fail "operator.replicaCount > 1 needs operator.peering.enabled=true: standalone replicas would all handle every event" }}
{{- end }}
{{- if .Values.agent.grpc.tls.enabled }}
{{- if not .Values.agent.grpc.tls.serverSecretName }}
{{- fail "agent.grpc.tls.enabled=true needs agent.grpc.tls.serverSecretName (Secret with tls.crt, tls.key, ca.crt)" }}
{{- end }}
{{- if not .Values.agent.grpc.tls.clientSecretName }}
{{- fail "agent.grpc.tls.enabled=true needs agent.grpc.tls.clientSecretName (Secret with tls.crt, tls.key, ca.crt)" }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled=true needs metrics.service.enabled=true (the ServiceMonitor selects that Service)" }}
{{- end }}
{{- if and .Values.metrics.service.enabled (not .Values.agent.metrics.enabled) }}
{{- fail "metrics.service.enabled=true needs agent.metrics.enabled=true (the Service exposes the agent's metrics port)" }}
{{- end }}
{{- end }}
