{{/*
Labels on every object of the release. User labels (custom_labels) come last; the
launcher rejects user keys that would repeat these.
*/}}
{{- define "hpl.labels" -}}
app.kubernetes.io/name: hyperpod-launcher
app.kubernetes.io/instance: {{ .Release.Name | toJson }}
app.kubernetes.io/managed-by: {{ .Release.Service | toJson }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | toJson }}
hyperpod-launcher/run-name: {{ .Values.job.runName | toJson }}
hyperpod-launcher/launch-id: {{ .Values.job.launchId | toJson }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Node affinity: all required expressions in one nodeSelectorTerm (terms are ORed, the
expressions of one term are ANDed), then the weighted preferences.
*/}}
{{- define "hpl.affinity" -}}
{{- $a := .Values.nodeAffinity -}}
{{- if or $a.required $a.preferred }}
affinity:
  nodeAffinity:
    {{- with $a.required }}
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            {{- range . }}
            - key: {{ .key | toJson }}
              operator: In
              values: {{ toJson .values }}
            {{- end }}
    {{- end }}
    {{- with $a.preferred }}
    preferredDuringSchedulingIgnoredDuringExecution:
      {{- range . }}
      - weight: {{ .weight }}
        preference:
          matchExpressions:
            - key: {{ .key | toJson }}
              operator: In
              values: {{ toJson .values }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end -}}

{{/*
The pod template of a training replica. Arguments (a dict): root (the chart's context),
container (the training container's name), command, ports, env (name/value pairs set
before the user's), and optional metadata (name/namespace), podLabels, podAnnotations.
*/}}
{{- define "hpl.podTemplate" -}}
{{- $root := .root -}}
{{- $v := .root.Values -}}
metadata:
  {{- with .metadata }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  labels:
    {{- include "hpl.labels" $root | nindent 4 }}
    {{- with .podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- $annotations := merge (dict) (.podAnnotations | default (dict)) ($v.annotations | default (dict)) }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $v.serviceAccountName }}
  serviceAccountName: {{ . | toJson }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . | toJson }}
  {{- end }}
  {{- with $v.schedulerName }}
  schedulerName: {{ . | toJson }}
  {{- end }}
  {{- if $v.hostNetwork }}
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  {{- end }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . | toJson }}
    {{- end }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- include "hpl.affinity" $root | nindent 2 }}
  {{- if $v.code.repo }}
  initContainers:
    - name: checkout
      image: {{ $v.code.image | toJson }}
      imagePullPolicy: {{ $v.imagePullPolicy }}
      command: ["/bin/bash", {{ printf "%s/checkout.sh" $v.paths.scripts | toJson }}]
      env:
        - name: HPL_GIT_REPO
          value: {{ $v.code.repo | toJson }}
        - name: HPL_GIT_BRANCH
          value: {{ $v.code.branch | default "" | toJson }}
        - name: HPL_GIT_COMMIT
          value: {{ $v.code.commit | default "" | toJson }}
        - name: HPL_CODE_DIR
          value: {{ $v.paths.code | toJson }}
        {{- if $v.code.gitTokenKey }}
        - name: HPL_GIT_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ $v.secretName | toJson }}
              key: {{ $v.code.gitTokenKey | toJson }}
              optional: true  # only private repositories need a token
        {{- end }}
      volumeMounts:
        - name: hpl-scripts
          mountPath: {{ $v.paths.scripts | toJson }}
        - name: hpl-code
          mountPath: {{ $v.paths.code | toJson }}
  {{- end }}
  containers:
    - name: {{ .container | toJson }}
      image: {{ $v.image | toJson }}
      imagePullPolicy: {{ $v.imagePullPolicy }}
      command: {{ toJson .command }}
      ports:
        {{- toYaml .ports | nindent 8 }}
      env:
        {{- range .env }}
        - name: {{ .name | toJson }}
          value: {{ .value | toString | toJson }}
        {{- end }}
        - name: HPL_SCRIPTS_DIR
          value: {{ $v.paths.scripts | toJson }}
        - name: HPL_POD_JOB_DIR
          value: {{ $v.paths.job | toJson }}
        {{- range $v.env }}
        - name: {{ .name | toJson }}
          value: {{ .value | toJson }}
        {{- end }}
        {{- range $v.secretEnv }}
        - name: {{ .name | toJson }}
          valueFrom:
            secretKeyRef:
              name: {{ $v.secretName | toJson }}
              key: {{ .key | toJson }}
        {{- end }}
      {{- if or $v.resources.requests $v.resources.limits }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      {{- end }}
      securityContext:
        capabilities:
          add: ["IPC_LOCK"]
      volumeMounts:
        - name: hpl-scripts
          mountPath: {{ $v.paths.scripts | toJson }}
        - name: hpl-job
          mountPath: {{ $v.paths.job | toJson }}
        {{- range $file, $_ := $v.jobFiles }}
        - name: hpl-recipe
          mountPath: {{ printf "%s/%s" $v.paths.job $file | toJson }}
          subPath: {{ $file | toJson }}
          readOnly: true
        {{- end }}
        {{- if $v.code.repo }}
        - name: hpl-code
          mountPath: {{ $v.paths.code | toJson }}
        {{- end }}
        - name: dshm
          mountPath: /dev/shm
        {{- range $v.volumes }}
        - name: {{ .name | toJson }}
          mountPath: {{ .mountPath | toJson }}
          readOnly: {{ .readOnly }}
        {{- end }}
        {{- range $v.claims }}
        - name: {{ .name | toJson }}
          mountPath: {{ .mountPath | toJson }}
          readOnly: {{ .readOnly }}
        {{- end }}
  volumes:
    - name: hpl-scripts
      configMap:
        name: {{ printf "%s-scripts" $v.job.name | toJson }}
        defaultMode: 493  # 0755: the scripts are executable
    - name: hpl-job
      emptyDir: {}
    {{- if $v.jobFiles }}
    - name: hpl-recipe
      configMap:
        name: {{ printf "%s-recipe" $v.job.name | toJson }}
    {{- end }}
    {{- if $v.code.repo }}
    - name: hpl-code
      emptyDir: {}
    {{- end }}
    - name: dshm
      emptyDir:
        medium: Memory
        {{- with $v.shmSizeLimit }}
        sizeLimit: {{ . | toJson }}
        {{- end }}
    {{- range $v.volumes }}
    - name: {{ .name | toJson }}
      hostPath:
        path: {{ .hostPath | toJson }}
    {{- end }}
    {{- range $v.claims }}
    - name: {{ .name | toJson }}
      persistentVolumeClaim:
        claimName: {{ .claimName | toJson }}
        readOnly: {{ .readOnly }}
    {{- end }}
{{- end -}}

{{/*
The per-pod scripts, mounted with mode 0755: the chart's own entrypoint.sh, this library's
checkout.sh, and the launcher's train_script.sh (the one per-node script every backend
uses), pre/post scripts and, in custom-script mode, the user's entry script.
*/}}
{{- define "hpl.scriptsConfigMap" -}}
{{- $common := index .Subcharts "hpl-common" -}}
{{- $files := dict "entrypoint.sh" (.Files.Get "files/entrypoint.sh") "checkout.sh" ($common.Files.Get "files/checkout.sh") -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ printf "%s-scripts" .Values.job.name | toJson }}
  namespace: {{ .Release.Namespace | toJson }}
  labels:
    {{- include "hpl.labels" . | nindent 4 }}
data:
  {{- toYaml (merge $files .Values.scripts) | nindent 2 }}
{{- end -}}

{{/*
The resolved recipe and the files the job reads beside it (e.g. ds_config.json), each
mounted at <paths.job>/<name>: the entry point reads them as --config-path/--config-name.
*/}}
{{- define "hpl.recipeConfigMap" -}}
{{- with .Values.jobFiles }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ printf "%s-recipe" $.Values.job.name | toJson }}
  namespace: {{ $.Release.Namespace | toJson }}
  labels:
    {{- include "hpl.labels" $ | nindent 4 }}
data:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
