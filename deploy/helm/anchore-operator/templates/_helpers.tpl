{{/*
Chart name, truncated to 63 characters (a DNS label).
*/}}
{{- define "anchore-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, plus the chart name unless the release name already contains it. Truncated to 63
characters. Used as the prefix of every resource name.
*/}}
{{- define "anchore-operator.fullname" -}}
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
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "anchore-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels on every resource.
*/}}
{{- define "anchore-operator.labels" -}}
helm.sh/chart: {{ include "anchore-operator.chart" . }}
{{ include "anchore-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "anchore-operator.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: anchore-operator
{{- end }}

{{/*
Selector labels: stable for the life of a release (a Deployment's selector cannot change).
*/}}
{{- define "anchore-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "anchore-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "anchore-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "anchore-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the leader-election Lease.
*/}}
{{- define "anchore-operator.leaseName" -}}
{{- .Values.leaderElection.leaseName | default (include "anchore-operator.fullname" .) }}
{{- end }}

{{/*
Image tag: the value, or the chart's appVersion.
*/}}
{{- define "anchore-operator.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
Image reference: repository:tag, or repository@digest when a digest pins it.
*/}}
{{- define "anchore-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "anchore-operator.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Name of the credentials Secret: the existing one, or the one this chart creates.
*/}}
{{- define "anchore-operator.credentialsSecretName" -}}
{{- .Values.anchore.existingSecret.name | default (printf "%s-credentials" (include "anchore-operator.fullname" .)) }}
{{- end }}

{{/*
Keys of the credentials Secret, as a dict {username, password, apiKey} ("" = not used). The chart's own Secret uses
the same keys as the defaults of existingSecret, so the Deployment reads both the same way.
*/}}
{{- define "anchore-operator.credentialsKeys" -}}
{{- $a := .Values.anchore }}
{{- if $a.existingSecret.name }}
{{- $apiKey := $a.existingSecret.apiKeyKey }}
username: {{ ternary "" $a.existingSecret.usernameKey (ne $apiKey "") | quote }}
password: {{ ternary "" $a.existingSecret.passwordKey (ne $apiKey "") | quote }}
apiKey: {{ $apiKey | quote }}
{{- else if $a.apiKey }}
username: ""
password: ""
apiKey: apiKey
{{- else }}
username: ""
password: password
apiKey: ""
{{- end }}
{{- end }}

{{/*
Name and key of the ConfigMap holding the Anchore CA bundle, as "name/key", or "" when none.
*/}}
{{- define "anchore-operator.caConfigMap" -}}
{{- if .Values.anchore.caBundle }}
{{- printf "%s-anchore-ca/ca.crt" (include "anchore-operator.fullname" .) }}
{{- else if .Values.anchore.caConfigMap }}
{{- printf "%s/%s" .Values.anchore.caConfigMap .Values.anchore.caConfigMapKey }}
{{- end }}
{{- end }}

{{/*
Name of the metrics Service (also the DNS name in the generated certificate).
*/}}
{{- define "anchore-operator.metricsServiceName" -}}
{{- printf "%s-metrics" (include "anchore-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the Secret with the metrics serving certificate.
*/}}
{{- define "anchore-operator.metricsTlsSecretName" -}}
{{- .Values.metrics.tls.existingSecret | default (printf "%s-metrics-tls" (include "anchore-operator.fullname" .)) }}
{{- end }}

{{/*
Data of the generated metrics TLS Secret (tls.crt, tls.key, ca.crt, base64). An existing Secret of that name is
reused (lookup), so upgrades keep the certificate; otherwise a self-signed one is generated for the Service's DNS
names. Computed once per render and kept on the root context, so the Secret and the pod's checksum agree.
*/}}
{{- define "anchore-operator.metricsTlsData" -}}
{{- if not (hasKey $ "anchoreOperatorMetricsTls") }}
{{- $name := include "anchore-operator.metricsTlsSecretName" . }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name }}
{{- $data := dict }}
{{- if and $existing (index ($existing.data | default dict) "tls.crt") (index ($existing.data | default dict) "tls.key") }}
{{- $data = dict "tls.crt" (index $existing.data "tls.crt") "tls.key" (index $existing.data "tls.key") "ca.crt" (index $existing.data "ca.crt" | default (index $existing.data "tls.crt")) }}
{{- else }}
{{- $svc := include "anchore-operator.metricsServiceName" . }}
{{- $ns := .Release.Namespace }}
{{- $dns := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) }}
{{- $cert := genSelfSignedCert (printf "%s.%s.svc" $svc $ns) nil $dns (int .Values.metrics.tls.generatedValidityDays) }}
{{- $data = dict "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) "ca.crt" ($cert.Cert | b64enc) }}
{{- end }}
{{- $_ := set $ "anchoreOperatorMetricsTls" $data }}
{{- end }}
{{- toYaml (get $ "anchoreOperatorMetricsTls") }}
{{- end }}

{{/*
Name of the admission webhook Service (also the DNS name in the webhook certificate).
*/}}
{{- define "anchore-operator.webhookServiceName" -}}
{{- printf "%s-webhook" (include "anchore-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the Secret with the admission webhook's serving certificate: the existing one, the one cert-manager issues, or
the one the chart generates. The last two differ, so switching to cert-manager never has Helm delete the Secret
cert-manager just wrote.
*/}}
{{- define "anchore-operator.webhookTlsSecretName" -}}
{{- if .Values.admission.tls.certManager.enabled }}
{{- printf "%s-webhook-cert-manager-tls" (include "anchore-operator.fullname" .) }}
{{- else }}
{{- .Values.admission.tls.existingSecret | default (printf "%s-webhook-tls" (include "anchore-operator.fullname" .)) }}
{{- end }}
{{- end }}

{{/*
Where the webhook certificate comes from: "existing", "cert-manager" or "generated".
*/}}
{{- define "anchore-operator.webhookTlsMode" -}}
{{- if .Values.admission.tls.certManager.enabled }}cert-manager
{{- else if .Values.admission.tls.existingSecret }}existing
{{- else }}generated
{{- end }}
{{- end }}

{{/*
DNS names the webhook certificate must be valid for: the Service name in every form a client may use.
*/}}
{{- define "anchore-operator.webhookDnsNames" -}}
{{- $svc := include "anchore-operator.webhookServiceName" . }}
{{- $ns := .Release.Namespace }}
{{- toJson (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns)) }}
{{- end }}

{{/*
Data of the generated webhook TLS Secret (tls.crt, tls.key, ca.crt, base64): a CA (genCA) and a serving certificate
it signs for the Service's DNS names. An existing Secret of that name is reused (lookup), so upgrades keep both and
the webhook's caBundle stays valid; otherwise new ones are generated. Computed once per render and kept on the root
context, so the Secret, the caBundle and the pod's checksum agree.
*/}}
{{- define "anchore-operator.webhookTlsData" -}}
{{- if not (hasKey $ "anchoreOperatorWebhookTls") }}
{{- $name := include "anchore-operator.webhookTlsSecretName" . }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name }}
{{- $old := $existing.data | default dict }}
{{- $data := dict }}
{{- if and (index $old "tls.crt") (index $old "tls.key") (index $old "ca.crt") }}
{{- $data = dict "tls.crt" (index $old "tls.crt") "tls.key" (index $old "tls.key") "ca.crt" (index $old "ca.crt") }}
{{- else }}
{{- $svc := include "anchore-operator.webhookServiceName" . }}
{{- $days := int .Values.admission.tls.generatedValidityDays }}
{{- $ca := genCA (printf "%s-ca" $svc) $days }}
{{- $dns := include "anchore-operator.webhookDnsNames" . | fromJsonArray }}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc .Release.Namespace) nil $dns $days $ca }}
{{- $data = dict "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) "ca.crt" ($ca.Cert | b64enc) }}
{{- end }}
{{- $_ := set $ "anchoreOperatorWebhookTls" $data }}
{{- end }}
{{- toYaml (get $ "anchoreOperatorWebhookTls") }}
{{- end }}

{{/*
The webhook's clientConfig.caBundle (base64 PEM): the generated CA, or admission.tls.caBundle with an existing
Secret. Empty with cert-manager, whose CA injector writes it.
*/}}
{{- define "anchore-operator.webhookCaBundle" -}}
{{- $mode := include "anchore-operator.webhookTlsMode" . }}
{{- if eq $mode "generated" }}
{{- index (include "anchore-operator.webhookTlsData" . | fromYaml) "ca.crt" }}
{{- else if eq $mode "existing" }}
{{- .Values.admission.tls.caBundle | nospace }}
{{- end }}
{{- end }}

{{/*
Namespaces the apiserver never sends to the webhook (namespaceSelector NotIn): the release namespace, where the
operator must always be able to start, and every exempt namespace given as a plain name. Globs cannot be expressed
in a label selector; the operator exempts those itself.
*/}}
{{- define "anchore-operator.webhookSkippedNamespaces" -}}
{{- $names := list .Release.Namespace }}
{{- range .Values.admission.exemptNamespaces }}
{{- if not (regexMatch "[*?]" .) }}
{{- $names = append $names . }}
{{- end }}
{{- end }}
{{- toJson ($names | uniq) }}
{{- end }}

{{/*
The pod's terminationGracePeriodSeconds: the value given, plus admission.shutdownDelaySeconds when the webhook is
served, so the admission hand-off (reviews answered while /readyz fails) and the drain both fit before SIGKILL.
*/}}
{{- define "anchore-operator.terminationGracePeriodSeconds" -}}
{{- $grace := int .Values.terminationGracePeriodSeconds }}
{{- if .Values.admission.enabled }}
{{- $grace = add $grace (int .Values.admission.shutdownDelaySeconds) }}
{{- end }}
{{- $grace }}
{{- end }}

{{/*
Data of the credentials Secret the chart creates (base64), or nothing with an existing Secret.
*/}}
{{- define "anchore-operator.credentialsData" -}}
{{- $a := .Values.anchore }}
{{- if not $a.existingSecret.name }}
{{- if $a.apiKey }}
apiKey: {{ $a.apiKey | b64enc | quote }}
{{- else }}
password: {{ $a.password | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Checks combinations of values the schema cannot express; fails the render with a message naming the values.
*/}}
{{- define "anchore-operator.validate" -}}
{{- $a := .Values.anchore }}
{{- $_ := required "clusterName is required: the name Anchore shows for this cluster (--set clusterName=prod-eu-1)" .Values.clusterName }}
{{- $_ := required "anchore.url is required: the Anchore API base URL (--set anchore.url=https://anchore-api.anchore:8228)" $a.url }}
{{- if not (regexMatch "^https?://[^/?#@[:space:]]+([/?#][^[:space:]]*)?$" $a.url) }}
{{- fail (printf "anchore.url %q must be an http(s) URL without credentials" $a.url) }}
{{- end }}
{{- if $a.existingSecret.name }}
{{- if and (not $a.existingSecret.apiKeyKey) (not $a.existingSecret.passwordKey) }}
{{- fail "anchore.existingSecret: set passwordKey (with usernameKey or anchore.username) or apiKeyKey" }}
{{- end }}
{{- if and (not $a.existingSecret.apiKeyKey) (not $a.existingSecret.usernameKey) (not $a.username) }}
{{- fail "anchore.existingSecret: the username comes from existingSecret.usernameKey or anchore.username; both are empty" }}
{{- end }}
{{- if and $a.existingSecret.apiKeyKey (eq $a.authMode "oauth") }}
{{- fail "anchore.authMode oauth needs a username and password; API keys (existingSecret.apiKeyKey) always use basic" }}
{{- end }}
{{- else }}
{{- if and $a.apiKey (or $a.username $a.password) }}
{{- fail "set either anchore.apiKey or anchore.username/anchore.password, not both" }}
{{- end }}
{{- if and (not $a.apiKey) (or (not $a.username) (not $a.password)) }}
{{- fail "Anchore credentials are required: anchore.existingSecret.name (recommended), or anchore.username and anchore.password, or anchore.apiKey" }}
{{- end }}
{{- if and $a.apiKey (eq $a.authMode "oauth") }}
{{- fail "anchore.authMode oauth needs a username and password; anchore.apiKey always uses basic" }}
{{- end }}
{{- end }}
{{- if and $a.caBundle $a.caConfigMap }}
{{- fail "set either anchore.caBundle or anchore.caConfigMap, not both" }}
{{- end }}
{{- if and $a.caBundle (not (contains "-----BEGIN CERTIFICATE-----" $a.caBundle)) }}
{{- fail "anchore.caBundle must be PEM (-----BEGIN CERTIFICATE-----)" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled: replicas without an elected leader would all register and report the same images" }}
{{- end }}
{{- if ge (int .Values.shutdownDrainSeconds) (int .Values.terminationGracePeriodSeconds) }}
{{- fail "shutdownDrainSeconds must be below terminationGracePeriodSeconds, or the kubelet kills the operator mid-drain" }}
{{- end }}
{{- $le := .Values.leaderElection }}
{{- if and $le.enabled (or (le (int $le.leaseDurationSeconds) (int $le.renewDeadlineSeconds)) (le (int $le.renewDeadlineSeconds) (int $le.retryPeriodSeconds))) }}
{{- fail "leaderElection needs leaseDurationSeconds > renewDeadlineSeconds > retryPeriodSeconds" }}
{{- end }}
{{- $sm := .Values.serviceMonitor }}
{{- if and $sm.enabled .Values.metrics.secure (not $sm.tlsConfig.insecureSkipVerify) $sm.namespace (ne $sm.namespace .Release.Namespace) }}
{{- fail "serviceMonitor.namespace must be the release namespace with metrics.secure: the ServiceMonitor trusts the CA in the metrics TLS Secret, which Prometheus reads from the ServiceMonitor's own namespace" }}
{{- end }}
{{- $adm := .Values.admission }}
{{- if $adm.enabled }}
{{- if has (int $adm.port) (list 8080 8081) }}
{{- fail (printf "admission.port %d is taken by the metrics (8080) or health (8081) server" (int $adm.port)) }}
{{- end }}
{{- if and $adm.tls.certManager.enabled $adm.tls.existingSecret }}
{{- fail "set either admission.tls.certManager.enabled or admission.tls.existingSecret, not both" }}
{{- end }}
{{- if and $adm.tls.certManager.enabled (not $adm.tls.certManager.issuerRef.name) }}
{{- fail "admission.tls.certManager.issuerRef.name is required with admission.tls.certManager.enabled: the cert-manager Issuer or ClusterIssuer that signs the webhook certificate" }}
{{- end }}
{{- if and $adm.tls.existingSecret (not $adm.tls.caBundle) }}
{{- fail "admission.tls.caBundle is required with admission.tls.existingSecret: the base64-encoded PEM CA that signed it (base64 -w0 ca.crt), which the apiserver verifies the webhook with" }}
{{- end }}
{{- if and $adm.tls.existingSecret (not (contains "-----BEGIN CERTIFICATE-----" (b64dec ($adm.tls.caBundle | nospace)))) }}
{{- fail "admission.tls.caBundle must be base64-encoded PEM (base64 -w0 ca.crt), not the PEM itself" }}
{{- end }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (not .Values.networkPolicy.egress.apiServer.cidrs) }}
{{- fail "networkPolicy.egress.apiServer.cidrs is required when networkPolicy.enabled: the apiserver endpoint addresses (kubectl get endpointslice -n default -l kubernetes.io/service-name=kubernetes)" }}
{{- end }}
{{- end }}
