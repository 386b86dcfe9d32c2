{{/*
Chart name, overridable. Truncated to 63 characters because some Kubernetes name fields are
limited to that by the DNS label standard.
*/}}
{{- define "modelarts-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. If the release name already contains the chart name it is used as is,
so `helm install modelarts-operator ...` yields "modelarts-operator", not a doubled name.
*/}}
{{- define "modelarts-operator.fullname" -}}
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

{{/*
Name for the RBAC objects. Release names are unique only within a namespace, so two releases of the
same name in different namespaces would otherwise overwrite each other's ClusterRoleBinding (or,
when both watch the same namespace, RoleBinding) and silently take away the other's permissions.
*/}}
{{- define "modelarts-operator.rbacName" -}}
{{- printf "%s-%s" .Release.Namespace (include "modelarts-operator.fullname" .) }}
{{- end }}

{{- define "modelarts-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: immutable on a Deployment, so they must never include versions.
*/}}
{{- define "modelarts-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelarts-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "modelarts-operator.labels" -}}
helm.sh/chart: {{ include "modelarts-operator.chart" . }}
{{ include "modelarts-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "modelarts-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelarts-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: a digest pins the exact image and wins over the tag; the tag defaults to the
chart's appVersion so chart and binary versions move together.
*/}}
{{- define "modelarts-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}
