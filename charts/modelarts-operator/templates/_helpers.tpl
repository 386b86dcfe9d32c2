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

{{/*
The alert rule groups, shared by the PrometheusRule and by hack/check-alerts.sh, which renders
them into a plain rules file for `promtool check rules` and `promtool test rules`.
*/}}
{{- define "modelarts-operator.alertGroups" -}}
{{- $r := .Values.metrics.prometheusRule -}}
{{- $job := default (include "modelarts-operator.fullname" .) $r.job -}}
{{- $labels := $r.alertLabels -}}
groups:
  - name: modelarts-operator.nodepools
    rules:
      - alert: ModelArtsNodePoolAbnormalNodes
        expr: max by (namespace, name) (modelarts_operator_nodepool_nodes{job="{{ $job }}", phase="abnormal"}) > 0
        for: {{ $r.abnormalFor }}
        labels:
          severity: warning
          {{- with $labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`{{ $labels.namespace }}/{{ $labels.name }}`}}: {{`{{ $value }}`}} ModelArts node(s) Abnormal"
          description: "Node pool {{`{{ $labels.namespace }}/{{ $labels.name }}`}} has {{`{{ $value }}`}} node(s) in phase Abnormal for {{ $r.abnormalFor }}."
          runbook: "kubectl describe mann -n {{`{{ $labels.namespace }}`}} {{`{{ $labels.name }}`}} lists the Abnormal nodes (status.abnormalNodes, NodeAbnormal events). Check each node in the ModelArts console (Lite Cluster > resource pool > nodes): driver and plugin phases, then reboot or replace the node there. The alert resolves on the first sync after the node is Available again."
      - alert: ModelArtsNodePoolBelowDesired
        expr: >-
          sum by (namespace, name) (modelarts_operator_nodepool_nodes{job="{{ $job }}", phase="available"})
          < max by (namespace, name) (modelarts_operator_nodepool_desired_nodes{job="{{ $job }}"})
        for: {{ $r.belowDesiredFor }}
        labels:
          severity: warning
          {{- with $labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`{{ $labels.namespace }}/{{ $labels.name }}`}}: fewer Available nodes than desired"
          description: "Node pool {{`{{ $labels.namespace }}/{{ $labels.name }}`}} has had fewer Available nodes than its desired count for {{ $r.belowDesiredFor }} ({{`{{ $value }}`}} Available)."
          runbook: "kubectl get mann -n {{`{{ $labels.namespace }}`}} {{`{{ $labels.name }}`}} shows DESIRED against NODES; the Scaling condition says whether nodes are still being created. A scale-out of GPU/NPU bare-metal flavors can take 20-40 minutes; beyond that, check the node pool's events and quota (flavor sold out in the AZ, ECS/EVS quota) in the ModelArts console."
      - alert: ModelArtsNodePoolCreationFailed
        expr: max by (namespace, name) (modelarts_operator_nodepool_creation_failed_nodes{job="{{ $job }}"}) > 0
        for: {{ $r.creationFailedFor }}
        labels:
          severity: critical
          {{- with $labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`{{ $labels.namespace }}/{{ $labels.name }}`}}: {{`{{ $value }}`}} node(s) failed to create"
          description: "ModelArts reports {{`{{ $value }}`}} node(s) of node pool {{`{{ $labels.namespace }}/{{ $labels.name }}`}} whose creation failed; the pool will not reach its desired count on its own."
          runbook: "kubectl describe mann shows Healthy=False/NodeCreationFailed with the flavor. In the ModelArts console open the resource pool's operation records for the failure cause (quota, sold-out flavor, subnet out of IPs), fix it, then retry or scale the node pool again."
      - alert: ModelArtsNodePoolSyncFailing
        expr: max by (namespace, name) (modelarts_operator_nodepool_synced{job="{{ $job }}"}) == 0
        for: {{ $r.syncFailingFor }}
        labels:
          severity: warning
          {{- with $labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`{{ $labels.namespace }}/{{ $labels.name }}`}}: reading ModelArts keeps failing"
          description: "The operator has failed to read node pool {{`{{ $labels.namespace }}/{{ $labels.name }}`}} for {{ $r.syncFailingFor }}; its status shows the last good data."
          runbook: "The Synced condition's reason names the cause: AuthenticationFailed/CredentialsInvalid (rotate the Secret), Forbidden (IAM policy needs modelarts:pool:get), NotFound (pool or node pool renamed/deleted), Throttled (lower --modelarts-qps or raise syncInterval), Unavailable/NetworkError (endpoint or egress)."
      - alert: ModelArtsNodePoolDataStale
        expr: time() - max by (namespace, name) (modelarts_operator_nodepool_last_successful_sync_timestamp_seconds{job="{{ $job }}"}) > {{ $r.staleAfterSeconds }}
        for: {{ $r.staleFor }}
        labels:
          severity: warning
          {{- with $labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "{{`{{ $labels.namespace }}/{{ $labels.name }}`}}: node-pool data is {{`{{ $value | humanizeDuration }}`}} old"
          description: "No successful sync of {{`{{ $labels.namespace }}/{{ $labels.name }}`}} for more than {{ $r.staleAfterSeconds }}s: dashboards and status show old data."
          runbook: "If ModelArtsNodePoolSyncFailing fires too, follow its runbook. Otherwise the operator is not getting to the pool: check modelarts_operator_reconciles_total, the rate limit (--modelarts-qps against pools x pages / syncInterval) and whether the resource is suspended (spec.suspend)."
  - name: modelarts-operator.operator
    rules:
      - alert: ModelArtsOperatorDown
        expr: absent(up{job="{{ $job }}"} == 1)
        for: {{ $r.operatorDownFor }}
        labels:
          severity: critical
          {{- with $labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "modelarts-operator is down or not scraped"
          description: "No modelarts-operator target (job {{ $job }}) has been up for {{ $r.operatorDownFor }}: node-pool status and metrics are no longer updated."
          runbook: "kubectl -n {{ .Release.Namespace }} get pods,deploy -l app.kubernetes.io/name={{ include "modelarts-operator.name" . }}; kubectl logs the pod. CrashLoop: read the first error line (it names the flag or value). Pending: node resources. Running but not up: the Service/ServiceMonitor or a NetworkPolicy blocks the scrape."
      - alert: ModelArtsOperatorNotLeading
        expr: (max(modelarts_operator_leader{job="{{ $job }}"}) or on() vector(0)) < 1 and on() (max(up{job="{{ $job }}"}) == 1)
        for: {{ $r.operatorDownFor }}
        labels:
          severity: critical
          {{- with $labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "modelarts-operator runs but no replica leads"
          description: "modelarts-operator targets are up but none has held the leader lease for {{ $r.operatorDownFor }}: no node pool is being reconciled."
          runbook: "kubectl -n {{ .Release.Namespace }} get lease; the holder should be a running operator pod. Check the pods' logs for lease errors (RBAC on coordination.k8s.io leases, API server reachability). Deleting a stuck pod hands the lease over."
{{- end }}
