{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "statemanager.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 characters. The release name alone is used when
it already contains the chart name.
*/}}
{{- define "statemanager.fullname" -}}
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
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "statemanager.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels for every resource of the release.
*/}}
{{- define "statemanager.labels" -}}
helm.sh/chart: {{ include "statemanager.chart" . }}
app.kubernetes.io/name: {{ include "statemanager.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: statemanager
{{- end }}

{{/*
Selector labels of the statemanager pods. The component label keeps the bundled etcd and
the test pod out of the statemanager Service, PDB and NetworkPolicy.
*/}}
{{- define "statemanager.selectorLabels" -}}
app.kubernetes.io/name: {{ include "statemanager.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/*
Selector labels of the bundled etcd pod.
*/}}
{{- define "statemanager.etcd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "statemanager.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: etcd
{{- end }}

{{/*
Name of the bundled etcd StatefulSet and its headless Service.
*/}}
{{- define "statemanager.etcd.fullname" -}}
{{- printf "%s-etcd" (include "statemanager.fullname" . | trunc 58 | trimSuffix "-") }}
{{- end }}

{{/*
Name of the ServiceAccount to use.
*/}}
{{- define "statemanager.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "statemanager.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Container image reference: repository@digest, or repository:tag (tag defaults to appVersion).
*/}}
{{- define "statemanager.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
etcd endpoints as a JSON list: the bundled etcd when enabled, etcd.endpoints otherwise.
*/}}
{{- define "statemanager.etcdEndpoints" -}}
{{- if .Values.etcd.bundled.enabled }}
{{- $scheme := ternary "https" "http" .Values.etcd.bundled.tls.enabled }}
{{- list (printf "%s://%s:%d" $scheme (include "statemanager.etcd.fullname" .) (int .Values.etcd.bundled.clientPort)) | toJson }}
{{- else }}
{{- .Values.etcd.endpoints | toJson }}
{{- end }}
{{- end }}

{{/* Where the Secrets are mounted inside the container. */}}
{{- define "statemanager.etcdTlsDir" -}}/etc/statemanager/etcd-tls{{- end }}
{{- define "statemanager.grpcTlsDir" -}}/etc/statemanager/grpc-tls{{- end }}
{{- define "statemanager.grpcClientCADir" -}}/etc/statemanager/grpc-client-ca{{- end }}
{{- define "statemanager.grpcTokensDir" -}}/etc/statemanager/grpc-tokens{{- end }}
{{- define "statemanager.actionControllerTlsDir" -}}/etc/statemanager/action-controller-tls{{- end }}
{{- define "statemanager.etcdServerTlsDir" -}}/etc/etcd/tls{{- end }}
{{- define "statemanager.configDir" -}}/etc/statemanager{{- end }}

{{/*
Path of a file from a mounted Secret, or "" when the key is empty.
Usage: include "statemanager.secretPath" (list DIR KEY)
*/}}
{{- define "statemanager.secretPath" -}}
{{- $dir := index . 0 }}{{- $key := index . 1 }}
{{- if $key }}{{ printf "%s/%s" $dir $key }}{{ end }}
{{- end }}

{{/*
The program's configuration file (config.yaml), as YAML.
*/}}
{{- define "statemanager.config" -}}
{{- $v := .Values }}
{{- $etcdTls := dict "caFile" "" "certFile" "" "keyFile" "" }}
{{- if $v.etcd.tls.enabled }}
{{- $dir := include "statemanager.etcdTlsDir" . }}
{{- $etcdTls = dict
      "caFile" (include "statemanager.secretPath" (list $dir $v.etcd.tls.caKey))
      "certFile" (include "statemanager.secretPath" (list $dir $v.etcd.tls.certKey))
      "keyFile" (include "statemanager.secretPath" (list $dir $v.etcd.tls.keyKey)) }}
{{- end }}
{{- $grpcTls := dict "certFile" "" "keyFile" "" "caFile" "" }}
{{- if $v.grpc.tls.enabled }}
{{- $dir := include "statemanager.grpcTlsDir" . }}
{{- $caFile := "" }}
{{- if $v.grpc.tls.clientCA.existingSecret }}
{{- $caFile = printf "%s/%s" (include "statemanager.grpcClientCADir" .) $v.grpc.tls.clientCA.key }}
{{- end }}
{{- $grpcTls = dict
      "certFile" (include "statemanager.secretPath" (list $dir $v.grpc.tls.certKey))
      "keyFile" (include "statemanager.secretPath" (list $dir $v.grpc.tls.keyKey))
      "caFile" $caFile }}
{{- end }}
{{- /* grpc.auth: only what is set, so that the program's defaults apply otherwise. Tokens are
       named by file (the Secret mounted by the Deployment), never by value. */}}
{{- $auth := dict }}
{{- $a := $v.grpc.auth }}
{{- if $a.tokens.identities }}
{{- $tokens := list }}
{{- $tokDir := include "statemanager.grpcTokensDir" . }}
{{- range $a.tokens.identities }}
{{- $tokens = append $tokens (dict "identity" . "tokenFile" (printf "%s/%s" $tokDir .)) }}
{{- end }}
{{- $_ := set $auth "tokens" $tokens }}
{{- end }}
{{- if kindIs "bool" $a.allowAnonymous }}
{{- $_ := set $auth "allowAnonymous" $a.allowAnonymous }}
{{- end }}
{{- if kindIs "slice" $a.rules }}
{{- $_ := set $auth "rules" (deepCopy $a.rules) }}
{{- end }}
{{- /* values-production.yaml leaves it empty: the default, 127.0.0.1, would be this pod itself. */}}
{{- if not $v.actionController.addr }}
{{- fail "actionController.addr is empty: set it to the ActionController's Service (host:port), e.g. --set actionController.addr=actioncontroller.pullpiri:47001 (127.0.0.1 would be this pod itself: no failed package would be repaired)" }}
{{- end }}
{{- $actionController := dict "addr" $v.actionController.addr "timeout" $v.actionController.timeout }}
{{- if $v.actionController.tls.enabled }}
{{- $dir := include "statemanager.actionControllerTlsDir" . }}
{{- $_ := set $actionController "tls" (dict
      "caFile" (include "statemanager.secretPath" (list $dir $v.actionController.tls.caKey))
      "certFile" (include "statemanager.secretPath" (list $dir $v.actionController.tls.certKey))
      "keyFile" (include "statemanager.secretPath" (list $dir $v.actionController.tls.keyKey))) }}
{{- end }}
{{- $grpc := dict
    "addr" (printf "0.0.0.0:%d" (int $v.grpc.port))
    "maxContainersPerList" (int $v.grpc.maxContainersPerList)
    "tls" $grpcTls }}
{{- if $auth }}
{{- $_ := set $grpc "auth" $auth }}
{{- end }}
{{- $config := dict
  "keyPrefix" $v.keyPrefix
  "etcd" (dict
    "endpoints" (include "statemanager.etcdEndpoints" . | fromJsonArray)
    "username" $v.etcd.username
    "passwordFile" ""
    "tls" $etcdTls
    "requestTimeout" $v.etcd.requestTimeout
    "keepaliveTime" $v.etcd.keepaliveTime
    "keepaliveTimeout" $v.etcd.keepaliveTimeout)
  "grpc" $grpc
  "http" (dict "addr" (printf "0.0.0.0:%d" (int $v.http.port)))
  "actionController" $actionController
  "controller" (dict "workers" (int $v.controller.workers) "resyncPeriod" $v.controller.resyncPeriod)
  "reconcile" (dict "triggerStates" $v.reconcile.triggerStates "repeatCap" $v.reconcile.repeatCap)
  "history" (dict "length" (int $v.history.length) "sweepAfter" $v.history.sweepAfter)
  "memory" (dict "heapGrowthPercent" (int $v.memory.heapGrowthPercent))
  "leaderElection" (dict "enabled" $v.leaderElection.enabled "leaseDuration" $v.leaderElection.leaseDuration)
  "nodeLiveness" (dict "enabled" $v.nodeLiveness.enabled "grace" $v.nodeLiveness.grace)
  "log" (dict "level" $v.log.level "format" $v.log.format) }}
{{- mergeOverwrite $config (deepCopy $v.extraConfig) | toYaml }}
{{- end }}

{{/*
Checks that cannot be expressed in values.schema.json.
*/}}
{{- define "statemanager.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 requires leaderElection.enabled=true: replicas without leader election would all write states" }}
{{- end }}
{{- if and .Values.etcd.tls.enabled (not .Values.etcd.tls.existingSecret) }}
{{- fail "etcd.tls.enabled=true requires etcd.tls.existingSecret (a Secret with the CA and the client certificate)" }}
{{- end }}
{{- if and .Values.etcd.tls.enabled (not .Values.etcd.bundled.enabled) }}
{{- range .Values.etcd.endpoints }}
{{- if not (hasPrefix "https://" .) }}
{{- fail (printf "etcd.tls.enabled=true but endpoint %q is not https://" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.grpc.tls.enabled (not .Values.grpc.tls.existingSecret) }}
{{- fail "grpc.tls.enabled=true requires grpc.tls.existingSecret (a kubernetes.io/tls Secret)" }}
{{- end }}
{{- $a := .Values.grpc.auth }}
{{- $clientCA := .Values.grpc.tls.clientCA.existingSecret }}
{{- if and $clientCA (not .Values.grpc.tls.enabled) }}
{{- fail "grpc.tls.clientCA.existingSecret (mutual TLS) requires grpc.tls.enabled=true and grpc.tls.existingSecret (the server certificate)" }}
{{- end }}
{{- if and $a.tokens.identities (not $a.tokens.existingSecret) }}
{{- fail "grpc.auth.tokens.identities requires grpc.auth.tokens.existingSecret (a Secret whose keys are the identities and values their tokens)" }}
{{- end }}
{{- if and $a.tokens.existingSecret (not $a.tokens.identities) }}
{{- fail "grpc.auth.tokens.existingSecret is set but grpc.auth.tokens.identities is empty: list the identities (keys of the Secret) to accept tokens for" }}
{{- end }}
{{- if and (kindIs "slice" $a.rules) (not $clientCA) (not $a.tokens.identities) }}
{{- fail "grpc.auth.rules need caller identities: set grpc.tls.clientCA.existingSecret (mutual TLS) or grpc.auth.tokens" }}
{{- end }}
{{- $b := .Values.etcd.bundled }}
{{- if and $b.enabled .Values.etcd.tls.enabled (not $b.tls.enabled) }}
{{- fail "etcd.tls.enabled=true with etcd.bundled.enabled=true needs etcd.bundled.tls.enabled=true (the bundled etcd serves plain HTTP otherwise), or point etcd.endpoints at a TLS-enabled etcd" }}
{{- end }}
{{- if and $b.enabled $b.tls.enabled }}
{{- if not $b.tls.existingSecret }}
{{- fail "etcd.bundled.tls.enabled=true requires etcd.bundled.tls.existingSecret (a Secret with the etcd server certificate tls.crt/tls.key and ca.crt, the CA that signs client certificates)" }}
{{- end }}
{{- if not (and .Values.etcd.tls.enabled .Values.etcd.tls.existingSecret .Values.etcd.tls.certKey .Values.etcd.tls.keyKey) }}
{{- fail "etcd.bundled.tls.enabled=true requires client certificates for statemanager: set etcd.tls.enabled=true and etcd.tls.existingSecret (ca.crt, tls.crt, tls.key: a client certificate signed by the CA in etcd.bundled.tls.existingSecret)" }}
{{- end }}
{{- end }}
{{- if and .Values.actionController.tls.enabled (not .Values.actionController.tls.existingSecret) }}
{{- fail "actionController.tls.enabled=true requires actionController.tls.existingSecret (a Secret with ca.crt and, for mutual TLS, tls.crt and tls.key)" }}
{{- end }}
{{- $at := .Values.actionController.tls }}
{{- if and $at.enabled (not $at.caKey) (not $at.certKey) }}
{{- fail "actionController.tls.enabled=true needs actionController.tls.caKey or certKey: with neither, statemanager would call the ActionController in plain text" }}
{{- end }}
{{- if and $at.enabled (ne (empty $at.certKey) (empty $at.keyKey)) }}
{{- fail "actionController.tls: a client certificate needs its key: set both certKey and keyKey, or neither" }}
{{- end }}
{{- /* Deny by default: once callers can be identified (a client CA or tokens, from the values
       or from extraConfig), statemanager refuses to start without grpc.auth.rules. Checked on
       the configuration as rendered, so extraConfig cannot slip past it. */}}
{{- $cfg := include "statemanager.config" . | fromYaml }}
{{- $g := $cfg.grpc | default dict }}
{{- $gtls := $g.tls | default dict }}
{{- $gauth := $g.auth | default dict }}
{{- if and (or $gtls.caFile $gauth.tokens) (not (kindIs "slice" $gauth.rules)) }}
{{- fail (printf "grpc.auth.rules is not set, but callers are identified (%s): statemanager denies by default and refuses to start without rules. Set grpc.auth.rules to what each identity may do (see values-production.yaml), or to [] to deny every call" (ternary "mutual TLS, grpc.tls.clientCA" "bearer tokens, grpc.auth.tokens" (not (empty $gtls.caFile)))) }}
{{- end }}
{{- /* Bearer tokens in clear text could be read off the network and replayed; statemanager
       refuses them unless it listens on loopback only. */}}
{{- if and $gauth.tokens (not $gtls.certFile) (not (regexMatch "^(127\\.|localhost:|\\[::1\\]:)" (toString $g.addr))) }}
{{- fail (printf "grpc.auth.tokens need TLS: without it bearer tokens travel in clear text and statemanager refuses to start (it listens on %s). Set grpc.tls.enabled=true and grpc.tls.existingSecret (the server certificate)" (toString $g.addr)) }}
{{- end }}
{{- /* Secrets never in the ConfigMap: an inline token or an etcd password set through extraConfig
       would be rendered into it (readable by whoever may read ConfigMaps, and kept in helm's
       release history). Found by an operator's audit. */}}
{{- range $i, $tok := ($gauth.tokens | default list) }}
{{- if and (kindIs "map" $tok) (hasKey $tok "token") }}
{{- fail (printf "grpc.auth.tokens[%d] holds its token inline (from extraConfig): it would be in the ConfigMap. Put the tokens in a Secret and use grpc.auth.tokens.existingSecret and grpc.auth.tokens.identities" $i) }}
{{- end }}
{{- end }}
{{- $ce := $cfg.etcd | default dict }}
{{- if $ce.password }}
{{- fail "etcd.password is set in the configuration (from extraConfig): it would be in the ConfigMap. Use etcd.username with etcd.auth.existingSecret (the password reaches the pod as ETCD_PASSWORD from the Secret)" }}
{{- end }}
{{- /* Leader election as rendered: extraConfig could turn it off past the check on the values
       (found by black-box probing: two replicas both writing states). */}}
{{- $le := $cfg.leaderElection | default dict }}
{{- if and (gt (int .Values.replicaCount) 1) (eq (toString $le.enabled) "false") }}
{{- fail "replicaCount > 1 requires leaderElection.enabled=true: the configuration as rendered (from extraConfig) turns it off, and replicas without leader election would all write states" }}
{{- end }}
{{- if eq (int .Values.grpc.port) (int .Values.http.port) }}
{{- fail (printf "grpc.port and http.port are both %d: statemanager cannot listen on one port twice" (int .Values.grpc.port)) }}
{{- end }}
{{- if and (not .Values.etcd.bundled.enabled) (eq (len .Values.etcd.endpoints) 0) }}
{{- fail "set etcd.endpoints to your etcd cluster, or etcd.bundled.enabled=true to try statemanager out" }}
{{- end }}
{{- end }}

{{/* "true" when a host:port (or http://host:port) names this pod's own loopback, else "". */}}
{{- define "statemanager.loopbackAddr" -}}
{{- if regexMatch "^(127\\.[0-9.]+|localhost|\\[::1\\]):[0-9]+/?$" (trimPrefix "http://" .) }}true{{ end }}
{{- end }}
