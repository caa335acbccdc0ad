{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "bgp-intent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object name. Room is left for the longest suffix ("-controller-metrics").
*/}}
{{- define "bgp-intent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 43 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 43 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 43 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "bgp-intent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "bgp-intent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bgp-intent
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component; call with (dict "root" $ "component" "controller"). */}}
{{- define "bgp-intent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bgp-intent.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one component's objects. */}}
{{- define "bgp-intent.componentLabels" -}}
{{ include "bgp-intent.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Image reference of one component: repository:tag, or repository@digest. */}}
{{- define "bgp-intent.image" -}}
{{- $image := index .root.Values .component "image" }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* ServiceAccount name of one component. */}}
{{- define "bgp-intent.serviceAccountName" -}}
{{- $sa := index .root.Values .component "serviceAccount" }}
{{- if $sa.create }}
{{- default (printf "%s-%s" (include "bgp-intent.fullname" .root) .component) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{/* Whether the metrics Services are rendered (the ServiceMonitors need them). */}}
{{- define "bgp-intent.metricsServices" -}}
{{- if or .Values.metrics.service.enabled .Values.serviceMonitor.enabled }}true{{ end }}
{{- end }}

{{/* A duration of the schema's form (500ms, 15s, 1m) in milliseconds. */}}
{{- define "bgp-intent.durationMs" -}}
{{- if hasSuffix "ms" . }}{{ trimSuffix "ms" . | atoi }}
{{- else if hasSuffix "s" . }}{{ mul (trimSuffix "s" . | atoi) 1000 }}
{{- else }}{{ mul (trimSuffix "m" . | atoi) 60000 }}
{{- end }}
{{- end }}

{{/*
Checks the schema cannot express: leader-election timings must satisfy
retryPeriod < renewDeadline < leaseDuration (client-go's rule), else a healthy leader could lose
its Lease between two renewals.
*/}}
{{- define "bgp-intent.validate" -}}
{{- $le := .Values.controller.leaderElection }}
{{- $lease := include "bgp-intent.durationMs" $le.leaseDuration | atoi }}
{{- $renew := include "bgp-intent.durationMs" $le.renewDeadline | atoi }}
{{- $retry := include "bgp-intent.durationMs" $le.retryPeriod | atoi }}
{{- if not (lt $renew $lease) }}
{{- fail (printf "controller.leaderElection.renewDeadline (%s) must be shorter than leaseDuration (%s)" $le.renewDeadline $le.leaseDuration) }}
{{- end }}
{{- if not (lt $retry $renew) }}
{{- fail (printf "controller.leaderElection.retryPeriod (%s) must be shorter than renewDeadline (%s)" $le.retryPeriod $le.renewDeadline) }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not (lt (include "bgp-intent.durationMs" .Values.serviceMonitor.scrapeTimeout | atoi) (include "bgp-intent.durationMs" .Values.serviceMonitor.interval | atoi))) }}
{{- fail "serviceMonitor.scrapeTimeout must be shorter than serviceMonitor.interval" }}
{{- end }}
{{- end }}
