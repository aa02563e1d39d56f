{{/*
How the operator reaches Anchore: directly, or through the proxy of proxy.httpsProxy / proxy.httpProxy (the
HTTPS_PROXY / HTTP_PROXY / NO_PROXY variables, read by the Anchore client only; docs/operations.md). The NetworkPolicy
opens the port the operator actually connects to.
*/}}

{{/*
A proxy URL value, checked: http:// or https:// (no scheme means http://), a host and at most a port, no credentials.
Returns the value trimmed. Never prints the value in a failure: it may hold a password.
Called with (dict "name" "proxy.httpsProxy" "value" .Values.proxy.httpsProxy).
*/}}
{{- define "anchore-operator.checkedProxy" -}}
{{- $v := .value | default "" | trim }}
{{- if $v }}
{{- $u := $v }}
{{- if not (regexMatch "^[A-Za-z][A-Za-z0-9+.-]*://" $v) }}{{ $u = printf "http://%s" $v }}{{ end }}
{{- if not (regexMatch "^[Hh][Tt][Tt][Pp][Ss]?://" $u) }}
{{- fail (printf "%s must be an http:// or https:// proxy URL, e.g. http://proxy.corp:3128" .name) }}
{{- end }}
{{- if regexMatch "^[A-Za-z]+://[^/?#]*@" $u }}
{{- fail (printf "%s must not carry credentials: values end up readable in the Deployment and the release. Put the whole proxy URL in a Secret and set HTTPS_PROXY (or HTTP_PROXY) from it with extraEnv, and open the proxy port with networkPolicy.egress.extra (docs/operations.md)" .name) }}
{{- end }}
{{- if not (regexMatch "^[A-Za-z]+://(\\[[0-9A-Fa-f:.]+\\]|[^:/?#\\[\\]@[:space:]]+)(:[0-9]+)?/?$" $u) }}
{{- fail (printf "%s must be a proxy URL of the form http://host:port (no path)" .name) }}
{{- end }}
{{- $v }}
{{- end }}
{{- end }}

{{/*
scheme, host and port of a URL as JSON: the explicit port, else 443 for https and 80 for http. Fails with a message
naming the value when no port can be derived. Called with (dict "name" "anchore.url" "url" $u "show" true); "show"
false keeps the URL out of the message.
*/}}
{{- define "anchore-operator.endpoint" -}}
{{- $u := .url }}
{{- if not (regexMatch "^[A-Za-z][A-Za-z0-9+.-]*://" $u) }}{{ $u = printf "http://%s" $u }}{{ end }}
{{- $what := ternary (printf "%s %q" .name .url) .name (eq .show true) }}
{{- $scheme := regexReplaceAll "^([A-Za-z][A-Za-z0-9+.-]*)://.*$" $u "${1}" | lower }}
{{- $hostport := regexReplaceAll "^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*).*$" $u "${1}" }}
{{- $host := "" }}
{{- $port := "" }}
{{- if regexMatch "^\\[[0-9A-Fa-f:.]+\\](:[0-9]+)?$" $hostport }}
{{- $host = regexReplaceAll "^\\[([0-9A-Fa-f:.]+)\\].*$" $hostport "${1}" }}
{{- $port = regexReplaceAll "^\\[[^\\]]*\\]:?" $hostport "" }}
{{- else if regexMatch "^[^:\\[\\]@]+(:[0-9]+)?$" $hostport }}
{{- $host = regexReplaceAll ":[0-9]+$" $hostport "" }}
{{- $port = regexReplaceAll "^[^:]*:?" $hostport "" }}
{{- else }}
{{- fail (printf "networkPolicy: cannot tell the port of %s (expected scheme://host[:port]); set networkPolicy.egress.anchore.ports (or networkPolicy.egress.proxy.ports for a proxy)" $what) }}
{{- end }}
{{- if not $port }}
{{- if eq $scheme "https" }}{{ $port = "443" }}{{ else if eq $scheme "http" }}{{ $port = "80" }}{{ end }}
{{- end }}
{{- if or (not $port) (lt (atoi $port) 1) (gt (atoi $port) 65535) }}
{{- fail (printf "networkPolicy: cannot tell the port of %s (no port, or one outside 1-65535); set networkPolicy.egress.anchore.ports (or networkPolicy.egress.proxy.ports for a proxy)" $what) }}
{{- end }}
{{- dict "scheme" $scheme "host" ($host | lower | trimSuffix ".") "port" (atoi $port) | toJson }}
{{- end }}

{{/*
Whether NO_PROXY exempts host:port, the way the operator reads it (src/anchore/proxy.ts): "direct" when an entry
matches (`*`, the host or a domain above it, an IP, each optionally with :port), "unsure" when only a CIDR entry could
match an IP host (the chart does not compute CIDRs: both ways are opened), else "proxy".
Called with (dict "noProxy" "..." "host" "anchore.example" "port" 8228).
*/}}
{{- define "anchore-operator.noProxyRoute" -}}
{{- $host := .host }}
{{- $port := int .port }}
{{- $hostIsIp := or (regexMatch "^[0-9.]+$" $host) (contains ":" $host) }}
{{- $route := "proxy" }}
{{- range (regexSplit "[\\s,]+" (.noProxy | default "" | trim) -1) }}
{{- $e := . }}
{{- $ePort := 0 }}
{{- if regexMatch "^\\[[^\\]]+\\](:[0-9]+)?$" $e }}
{{- $p := regexReplaceAll "^\\[[^\\]]+\\]:?" $e "" }}
{{- if $p }}{{ $ePort = atoi $p }}{{ end }}
{{- $e = regexReplaceAll "^\\[([^\\]]+)\\].*$" $e "${1}" }}
{{- else if regexMatch "^[^:]+:[0-9]+$" $e }}
{{- $ePort = atoi (regexReplaceAll "^[^:]+:" $e "") }}
{{- $e = regexReplaceAll ":[0-9]+$" $e "" }}
{{- end }}
{{- if and $e (or (eq $ePort 0) (eq $ePort $port)) }}
{{- $name := $e | lower | trimPrefix "*" | trimPrefix "." | trimSuffix "." }}
{{- $nameIsIp := or (regexMatch "^[0-9.]+$" $name) (contains ":" $name) }}
{{- if eq $e "*" }}
{{- $route = "direct" }}
{{- else if contains "/" $e }}
{{- if and $hostIsIp (ne $route "direct") }}{{ $route = "unsure" }}{{ end }}
{{- else if eq $name $host }}
{{- $route = "direct" }}
{{- else if and (not $hostIsIp) (not $nameIsIp) $name (hasSuffix (printf ".%s" $name) $host) }}
{{- $route = "direct" }}
{{- end }}
{{- end }}
{{- end }}
{{- $route }}
{{- end }}

{{/*
The egress the operator needs towards Anchore, as JSON: {"anchorePorts": [...], "proxyPorts": [...]} — an empty list
when that way is not used. anchorePorts: networkPolicy.egress.anchore.ports, or the port of anchore.url. proxyPorts:
networkPolicy.egress.proxy.ports, or the port of the proxy URL, when the proxy variable for anchore.url's scheme is set
and proxy.noProxy does not exempt Anchore's host.
*/}}
{{- define "anchore-operator.anchoreEgress" -}}
{{- $np := .Values.networkPolicy.egress }}
{{- $a := include "anchore-operator.endpoint" (dict "name" "anchore.url" "url" .Values.anchore.url "show" true) | fromJson }}
{{- $proxyName := ternary "proxy.httpsProxy" "proxy.httpProxy" (eq $a.scheme "https") }}
{{- $proxy := include "anchore-operator.checkedProxy" (dict "name" $proxyName "value" (ternary .Values.proxy.httpsProxy .Values.proxy.httpProxy (eq $a.scheme "https"))) }}
{{- $route := "direct" }}
{{- if $proxy }}
{{- $route = include "anchore-operator.noProxyRoute" (dict "noProxy" .Values.proxy.noProxy "host" $a.host "port" $a.port) }}
{{- end }}
{{- $anchorePorts := list }}
{{- if ne $route "proxy" }}
{{- $anchorePorts = $np.anchore.ports | default (list $a.port) }}
{{- end }}
{{- $proxyPorts := list }}
{{- if ne $route "direct" }}
{{- $p := include "anchore-operator.endpoint" (dict "name" $proxyName "url" $proxy "show" false) | fromJson }}
{{- $proxyPorts = $np.proxy.ports | default (list $p.port) }}
{{- end }}
{{- dict "anchorePorts" $anchorePorts "proxyPorts" $proxyPorts | toJson }}
{{- end }}
