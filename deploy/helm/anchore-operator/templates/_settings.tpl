{{/*
The operator's settings (src/config.ts SETTINGS) as environment variables, rendered into the ConfigMap the container
reads with envFrom. Values that are empty are left out, so the operator's own default applies. Credentials, file
paths and the downward API are set on the container itself (deployment.yaml).
*/}}
{{- define "anchore-operator.settings" -}}
{{- $v := .Values }}
{{- $s := dict }}
{{- $_ := set $s "ANCHORE_URL" $v.anchore.url }}
{{- $_ := set $s "ANCHORE_ACCOUNT" $v.anchore.account }}
{{- $_ := set $s "ANCHORE_AUTH_MODE" $v.anchore.authMode }}
{{- $_ := set $s "ANCHORE_INSECURE_SKIP_TLS_VERIFY" $v.anchore.insecureSkipTlsVerify }}
{{- $_ := set $s "ANCHORE_TIMEOUT_SECONDS" $v.anchore.timeoutSeconds }}
{{- $_ := set $s "ANCHORE_CONCURRENCY" $v.anchore.concurrency }}
{{- $_ := set $s "ANCHORE_RATE_LIMIT" $v.anchore.rateLimit }}
{{- $_ := set $s "ANCHORE_RATE_BURST" $v.anchore.rateBurst }}
{{- /* Not settings of src/config.ts but the standard proxy variables, which the Anchore client reads (docs/operations.md). */}}
{{- $_ := set $s "HTTPS_PROXY" (include "anchore-operator.checkedProxy" (dict "name" "proxy.httpsProxy" "value" $v.proxy.httpsProxy)) }}
{{- $_ := set $s "HTTP_PROXY" (include "anchore-operator.checkedProxy" (dict "name" "proxy.httpProxy" "value" $v.proxy.httpProxy)) }}
{{- $_ := set $s "NO_PROXY" ($v.proxy.noProxy | default "" | trim) }}
{{- $_ := set $s "CLUSTER_NAME" $v.clusterName }}
{{- $_ := set $s "NAMESPACES_INCLUDE" (join "," $v.namespaces.include) }}
{{- $_ := set $s "NAMESPACES_EXCLUDE" (join "," $v.namespaces.exclude) }}
{{- $_ := set $s "NAMESPACE_LABEL_SELECTOR" $v.namespaces.labelSelector }}
{{- $_ := set $s "IMAGES_EXCLUDE" (join "," $v.images.exclude) }}
{{- $_ := set $s "MISSING_TAG_POLICY" $v.images.missingTagPolicy }}
{{- $_ := set $s "MISSING_REGISTRY_OVERRIDE" $v.images.missingRegistryOverride }}
{{- $routes := list }}
{{- range $account, $namespaces := $v.accounts.routes }}
{{- $routes = append $routes (printf "%s:%s" $account (join "," $namespaces)) }}
{{- end }}
{{- $_ := set $s "ACCOUNT_ROUTES" (join ";" $routes) }}
{{- $_ := set $s "ACCOUNT_NAMESPACE_LABEL" $v.accounts.namespaceLabel }}
{{- $_ := set $s "INVENTORY_ENABLED" $v.inventory.enabled }}
{{- $_ := set $s "INVENTORY_INTERVAL_SECONDS" $v.inventory.intervalSeconds }}
{{- $_ := set $s "INVENTORY_DEBOUNCE_MS" $v.inventory.debounceMs }}
{{- $_ := set $s "INVENTORY_MIN_INTERVAL_MS" $v.inventory.minIntervalMs }}
{{- $_ := set $s "INVENTORY_BATCH_BYTES" $v.inventory.batchBytes }}
{{- $_ := set $s "INVENTORY_SPLIT_NAMESPACES" $v.inventory.splitNamespaces }}
{{- $_ := set $s "INVENTORY_BUDGET_SECONDS" $v.inventory.budgetSeconds }}
{{- $_ := set $s "INVENTORY_BUDGET_MIN_BYTES_PER_SECOND" $v.inventory.budgetMinBytesPerSecond }}
{{- $_ := set $s "INTEGRATION_ENABLED" $v.integration.enabled }}
{{- $_ := set $s "HEALTH_REPORT_INTERVAL_SECONDS" $v.integration.healthReportIntervalSeconds }}
{{- $_ := set $s "INTEGRATION_ID" $v.integration.id }}
{{- $_ := set $s "REGISTRATION_WORKERS" $v.registration.workers }}
{{- $_ := set $s "ANALYSIS_POLL_MAX_SECONDS" $v.registration.analysisPollMaxSeconds }}
{{- $_ := set $s "ANCHORE_IMAGES_REFRESH_SECONDS" $v.anchore.imagesRefreshSeconds }}
{{- $_ := set $s "BINDING_WORKERS" $v.bindings.workers }}
{{- $_ := set $s "EVALUATION_CONCURRENCY" $v.bindings.evaluationConcurrency }}
{{- $_ := set $s "POLICY_POLL_SECONDS" $v.bindings.policyPollSeconds }}
{{- $_ := set $s "METRICS_MAX_SERIES" $v.metrics.maxSeries }}
{{- $_ := set $s "METRICS_VULNERABILITIES" $v.metrics.vulnerabilities }}
{{- $_ := set $s "VULNERABILITY_REFRESH_SECONDS" $v.metrics.vulnerabilityRefreshSeconds }}
{{- $_ := set $s "METRICS_CVE_SERIES" $v.metrics.cveSeries }}
{{- $_ := set $s "METRICS_CVE_MIN_SEVERITY" $v.metrics.cveMinSeverity }}
{{- $_ := set $s "METRICS_CVE_FIXABLE_ONLY" $v.metrics.cveFixableOnly }}
{{- $_ := set $s "REPORTS_METRICS_ENABLED" $v.metrics.reports.enabled }}
{{- $_ := set $s "REPORTS_METRICS" (join "," $v.metrics.reports.metrics) }}
{{- $_ := set $s "REPORTS_INTERVAL_SECONDS" $v.metrics.reports.intervalSeconds }}
{{- $_ := set $s "METRICS_SECURE" $v.metrics.secure }}
{{- $_ := set $s "ADMISSION_ENABLED" $v.admission.enabled }}
{{- $_ := set $s "ADMISSION_PORT" $v.admission.port }}
{{- /* Below the webhook's timeoutSeconds, leaving the rest of it for TLS, the network and answering: 2 s, or half of it
when that is shorter. 5 s (the default) gives the operator's own default, 3000 ms. */}}
{{- $timeout := int $v.admission.timeoutSeconds }}
{{- $_ := set $s "ADMISSION_DEADLINE_MS" (max (sub (mul $timeout 1000) 2000) (mul $timeout 500)) }}
{{- /* An empty value would mean the operator's default (kube-system): "none" is said with the release namespace, which
is always exempt anyway. */}}
{{- $_ := set $s "ADMISSION_EXEMPT_NAMESPACES" (join "," $v.admission.exemptNamespaces | default .Release.Namespace) }}
{{- $_ := set $s "ADMISSION_REGISTER_UNKNOWN" $v.admission.registerUnknown }}
{{- $_ := set $s "ADMISSION_REGISTER_MAX_PER_REVIEW" $v.admission.registration.maxPerReview }}
{{- $_ := set $s "ADMISSION_REGISTER_NAMESPACE_PER_MINUTE" $v.admission.registration.perNamespacePerMinute }}
{{- $_ := set $s "ADMISSION_REGISTER_PER_MINUTE" $v.admission.registration.perMinute }}
{{- $_ := set $s "ADMISSION_REGISTER_REPOSITORIES" (join "," $v.admission.registration.repositories) }}
{{- /* Never empty (the schema requires an entry): the operator would read an empty value as its default list. */}}
{{- $_ := set $s "ADMISSION_TRUSTED_CONTROLLERS" (join "," $v.admission.trustedControllers) }}
{{- $_ := set $s "ADMISSION_SHUTDOWN_DELAY_SECONDS" $v.admission.shutdownDelaySeconds }}
{{- $_ := set $s "RESYNC_INTERVAL_SECONDS" $v.kube.resyncIntervalSeconds }}
{{- $_ := set $s "WATCH_WATCHDOG_SECONDS" $v.kube.watchWatchdogSeconds }}
{{- /* Names this release on the ClusterAnchorePolicyBindings it owns (status.install); unique per cluster. */}}
{{- $_ := set $s "INSTALL_ID" (printf "%s/%s" .Release.Namespace (include "anchore-operator.fullname" .)) }}
{{- $_ := set $s "LEADER_ELECTION" $v.leaderElection.enabled }}
{{- if $v.leaderElection.enabled }}
{{- $_ := set $s "LEADER_ELECTION_NAMESPACE" .Release.Namespace }}
{{- $_ := set $s "LEADER_ELECTION_ID" (include "anchore-operator.leaseName" .) }}
{{- $_ := set $s "LEASE_DURATION_SECONDS" $v.leaderElection.leaseDurationSeconds }}
{{- $_ := set $s "RENEW_DEADLINE_SECONDS" $v.leaderElection.renewDeadlineSeconds }}
{{- $_ := set $s "RETRY_PERIOD_SECONDS" $v.leaderElection.retryPeriodSeconds }}
{{- end }}
{{- $_ := set $s "BIND_ADDRESS" "0.0.0.0" }}
{{- $_ := set $s "HEALTH_PORT" 8081 }}
{{- $_ := set $s "METRICS_PORT" 8080 }}
{{- $_ := set $s "LOG_LEVEL" $v.logLevel }}
{{- $_ := set $s "LOG_PRETTY" false }}
{{- $_ := set $s "SHUTDOWN_DRAIN_SECONDS" $v.shutdownDrainSeconds }}
{{- range $k, $val := $s }}
{{- /* values files yield float64 numbers: print whole numbers without an exponent */}}
{{- $str := ternary (toString (int64 $val)) (toString $val) (kindIs "float64" $val) }}
{{- if ne $str "" }}
{{ $k }}: {{ $str | quote }}
{{- end }}
{{- end }}
{{- end }}
