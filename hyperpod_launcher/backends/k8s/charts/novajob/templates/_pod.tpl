{{/* Pieces every Nova pod shares: placement, the init container, volumes and mounts. */}}

{{- define "novajob.tolerations" -}}
tolerations:
  - key: sagemaker.amazonaws.com/RestrictedNode
    operator: Equal
    value: Worker
    effect: NoSchedule
{{- end }}

{{- define "novajob.affinity" -}}
{{- $affinity := .Values.nodeAffinity }}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
          {{- range $affinity.required }}
            - key: {{ .key | quote }}
              operator: In
              values: {{ toJson .values }}
          {{- end }}
    {{- with $affinity.preferred }}
    preferredDuringSchedulingIgnoredDuringExecution:
      {{- range . }}
      - weight: {{ .weight }}
        preference:
          matchExpressions:
            - key: {{ .key | quote }}
              operator: In
              values: {{ toJson .values }}
      {{- end }}
    {{- end }}
{{- end }}

{{- define "novajob.initContainers" -}}
initContainers:
  - name: init-container
    image: {{ .Values.initImage | quote }}
    imagePullPolicy: {{ .Values.pullPolicy }}
    volumeMounts:
      - name: fsx-path-init
        mountPath: /sagemaker/fsx/init
      - name: training-config
        mountPath: /config
      - name: logs
        mountPath: /var/log/aws/clusters
{{- end }}

{{- define "novajob.resources" -}}
resources:
  limits:
    nvidia.com/gpu: {{ .job.devices }}
    vpc.amazonaws.com/efa: {{ .root.Values.efaDevices }}
  requests:
    nvidia.com/gpu: {{ .job.devices }}
    vpc.amazonaws.com/efa: {{ .root.Values.efaDevices }}
{{- end }}

{{- define "novajob.mounts" -}}
volumeMounts:
  - name: fsx-path-main
    mountPath: /sagemaker/fsx/main
  - name: training-config
    mountPath: /config
  - name: dshm
    mountPath: /dev/shm
  - name: logs
    mountPath: /var/log/aws/clusters
  - name: fsx-path-output-artifacts
    mountPath: /sagemaker/fsx/output_artifacts
  {{- if .nodeTmp }}
  - name: tmp-storage
    mountPath: /tmp
  {{- end }}
{{- end }}

{{- define "novajob.volumes" -}}
volumes:
  - name: fsx-path-main
    hostPath:
      path: /sagemaker/fsx/main
      type: DirectoryOrCreate
  - name: fsx-path-init
    hostPath:
      path: /sagemaker/fsx/init
      type: DirectoryOrCreate
  - name: training-config
    configMap:
      name: training-config-{{ .name }}
  - name: dshm
    emptyDir:
      medium: Memory
  - name: logs
    hostPath:
      path: /var/log/aws/clusters
      type: DirectoryOrCreate
  - name: fsx-path-output-artifacts
    hostPath:
      path: /sagemaker/fsx/output_artifacts
      type: DirectoryOrCreate
  {{- if .nodeTmp }}
  - name: tmp-storage
    hostPath:
      path: /opt/dlami/nvme
      type: Directory
  {{- end }}
{{- end }}

{{- define "novajob.labels" -}}
{{- range $key, $value := . }}
{{ $key | quote }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{- define "novajob.metadata" -}}
{{- $root := .root }}
name: {{ .name }}
namespace: {{ $root.Values.namespace }}
{{- with $root.Values.annotations }}
annotations:
  {{- include "novajob.labels" . | nindent 2 }}
{{- end }}
labels:
  app: {{ .name }}
  {{- include "novajob.labels" $root.Values.labels | nindent 2 }}
{{- end }}
