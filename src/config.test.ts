import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, RESERVED_PREFIXES, describeConfig, integrationConfiguration, loadConfig } from './config.ts';
import { Globs } from './discovery/glob.ts';
import { Scope } from './model/scope.ts';

const base = { ANCHORE_URL: 'https://anchore:8228/v2/', ANCHORE_USERNAME: 'admin', ANCHORE_PASSWORD: 's3cret-pw', CLUSTER_NAME: 'prod' };

function fails(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('when only the required settings are given, then safe defaults apply', () => {
    const c = loadConfig(base);
    expect(c.anchore.auth).toEqual({ type: 'basic', username: 'admin', password: 's3cret-pw' });
    expect(c.anchore.account).toBe('admin');
    expect(c.anchore.insecureSkipTlsVerify).toBe(false);
    expect(c.images.missingTagPolicy).toBe('digest');
    expect(c.inventory.enabled).toBe(true);
    expect(c.http).toEqual({ bindAddress: '0.0.0.0', healthPort: 8081, metricsPort: 8080 });
  });

  it.each([
    [{ ANCHORE_URL: '' }, 'ANCHORE_URL is required'],
    [{ ANCHORE_URL: 'ftp://x' }, 'not an http(s) URL'],
    [{ ANCHORE_URL: 'https://u:p@x' }, 'must not contain credentials'],
    [
      { ANCHORE_URL: 'https://anchore.example:8228/v1' },
      'ANCHORE_URL "https://anchore.example:8228/v1" ends in /v1, but the operator uses Anchore\'s V2 API: give the base URL (https://anchore.example:8228) or https://anchore.example:8228/v2',
    ],
    [{ ANCHORE_URL: 'https://proxy.example/anchore/v1/' }, 'give the base URL (https://proxy.example/anchore) or https://proxy.example/anchore/v2'],
    [{ ANCHORE_URL: 'https://anchore.example?x=1' }, 'must not carry a query or fragment'],
    [{ EVENT_NAMESPACE: 'anchore-system' }, 'EVENT_NAMESPACE is no longer a setting: Events about cluster-scoped bindings must be in namespace default'],
    [{ ANCHORE_PASSWORD: '' }, 'credentials are required'],
    [{ ANCHORE_API_KEY: 'k' }, 'not both'],
    [{ CLUSTER_NAME: '' }, 'CLUSTER_NAME is required'],
    [{ ANCHORE_CONCURRENCY: 'lots' }, 'ANCHORE_CONCURRENCY: "lots" is not a whole number'],
    [{ ANCHORE_CONCURRENCY: '0' }, 'out of range'],
    [{ HEALTH_REPORT_INTERVAL_SECONDS: '5' }, 'HEALTH_REPORT_INTERVAL_SECONDS: 5 is out of range 30..600'],
    [{ MISSING_TAG_POLICY: 'guess' }, 'must be one of digest, insert, drop'],
    [{ ANCHORE_INSECURE_SKIP_TLS_VERIFY: 'maybe' }, 'is not a boolean'],
    [{ NAMESPACE_LABEL_SELECTOR: 'a in (' }, 'NAMESPACE_LABEL_SELECTOR'],
    [{ ACCOUNT_ROUTES: 'team-a' }, 'must look like account:namespace'],
    [{ ANCHORE_CA_FILE: '/nonexistent/ca.pem' }, 'ANCHORE_CA_FILE /nonexistent/ca.pem: cannot read (ENOENT)'],
  ])('when %j, then it fails with a one-line cause', (override, expected) => {
    const msg = fails({ ...base, ...override });
    expect(msg).toContain(expected);
    expect(msg).not.toContain('s3cret-pw');
  });

  it('when INSTALL_ID is not set, then the Lease namespace/name names the install; a set one wins, whitespace is refused', () => {
    expect(loadConfig({ ...base, POD_NAMESPACE: 'ops', LEADER_ELECTION_ID: 'r1' }).bindings.installId).toBe('ops/r1');
    expect(loadConfig({ ...base, INSTALL_ID: 'team-a' }).bindings.installId).toBe('team-a');
    expect(() => loadConfig({ ...base, INSTALL_ID: 'team a' })).toThrow(/INSTALL_ID "team a": at most 253 characters, no whitespace/);
  });

  it('when an API key is given, then API-key auth is used', () => {
    const c = loadConfig({ ANCHORE_URL: 'http://a', CLUSTER_NAME: 'c', ANCHORE_API_KEY: 'key-1' });
    expect(c.anchore.auth).toEqual({ type: 'apikey', key: 'key-1' });
  });

  it('when the password comes from a file, then it is read without the trailing newline, and the file is kept to follow a rotated Secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    const c = loadConfig({ ...base, ANCHORE_PASSWORD: '', ANCHORE_PASSWORD_FILE: join(dir, 'pw'), ANCHORE_AUTH_MODE: 'oauth' });
    expect(c.anchore.auth).toEqual({ type: 'oauth', username: 'admin', password: 'from-file', secretFile: join(dir, 'pw') });
  });

  it('when ANCHORE_CA_FILE holds no certificate, or a block that does not parse, then the config is refused naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-ca-'));
    writeFileSync(join(dir, 'empty.pem'), 'not a certificate\n');
    writeFileSync(join(dir, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n');
    expect(() => loadConfig({ ...base, ANCHORE_CA_FILE: join(dir, 'empty.pem') })).toThrow(`ANCHORE_CA_FILE ${join(dir, 'empty.pem')}: holds no PEM certificate`);
    expect(() => loadConfig({ ...base, ANCHORE_CA_FILE: join(dir, 'broken.pem') })).toThrow(/certificate 1 of 1 does not parse/);
  });

  it('when account routes are given as a string, then they parse in order', () => {
    const c = loadConfig({ ...base, ACCOUNT_ROUTES: 'team-a:shop,team-a-*; team-b:billing' });
    expect(c.accounts.routes.map((r) => ({ account: r.account, namespaces: r.namespaces.patterns }))).toEqual([
      { account: 'team-a', namespaces: ['shop', 'team-a-*'] },
      { account: 'team-b', namespaces: ['billing'] },
    ]);
  });

  it('when glob settings are read, then they are compiled once: the config holds the matchers, which the scope takes as they are', () => {
    const c = loadConfig({
      ...base,
      NAMESPACES_INCLUDE: 'shop-*',
      NAMESPACES_EXCLUDE: 'shop-tmp',
      IMAGES_EXCLUDE: 'registry.k8s.io/**',
      ACCOUNT_ROUTES: 'team-a:shop-a*',
      REPORTS_METRICS: 'vulnerabilities.*',
    });
    expect(c.namespaces.include).toBeInstanceOf(Globs);
    expect(c.namespaces.include.matches('shop-a')).toBe(true);
    expect(c.namespaces.exclude.matches('shop-tmp')).toBe(true);
    expect(c.images.exclude.matches('registry.k8s.io/pause:3.9')).toBe(true);
    expect(c.accounts.routes[0]?.namespaces.matches('shop-a1')).toBe(true);
    expect(c.metrics.reports.metrics.matches('vulnerabilities.tags.all.critical')).toBe(true);
    // Logged and sent to Anchore as the patterns written.
    expect(JSON.parse(JSON.stringify(c.namespaces))).toEqual({ include: ['shop-*'], exclude: ['shop-tmp'] });
    expect(integrationConfiguration(c)).toMatchObject({
      namespaces: { include: ['shop-*'], exclude: ['shop-tmp'] },
      account_routes: [{ account: 'team-a', namespaces: ['shop-a*'] }],
      image_exclude: ['registry.k8s.io/**'],
    });
    // The scope uses the config's matchers (no second compile): a spy on them sees the scope's questions.
    const seen: string[] = [];
    const include = c.namespaces.include;
    const spied = Object.assign(Object.create(Object.getPrototypeOf(include) as object) as Globs, include, { matches: (v: string) => (seen.push(v), include.matches(v)) });
    const scope = new Scope({
      namespaces: { include: spied, exclude: c.namespaces.exclude },
      imageExclude: c.images.exclude,
      imagePolicy: { missingTagPolicy: 'digest' },
      defaultAccount: 'admin',
      routes: c.accounts.routes,
    });
    expect(scope.includesNamespace({ key: 'shop-b', resourceVersion: '1', uid: 'u', name: 'shop-b', labels: {} })).toBe(true);
    expect(seen).toEqual(['shop-b']);
    expect(scope.accountFor(undefined, 'shop-a1')).toBe('team-a');
  });

  it('when a CONFIG_FILE is given, then its keys apply, environment variables win, and unknown keys are rejected', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const f = join(dir, 'c.yaml');
    writeFileSync(f, 'CLUSTER_NAME: from-file\nNAMESPACES_EXCLUDE: [kube-system, "kube-*"]\nACCOUNT_ROUTES:\n  team-a: [shop]\nLOG_LEVEL: debug\n');
    const c = loadConfig({ ...base, CLUSTER_NAME: '', CONFIG_FILE: f, LOG_LEVEL: 'warn' });
    expect(c.clusterName).toBe('from-file');
    expect(c.namespaces.exclude.patterns).toEqual(['kube-system', 'kube-*']);
    expect(c.accounts.routes.map((r) => ({ account: r.account, namespaces: r.namespaces.patterns }))).toEqual([{ account: 'team-a', namespaces: ['shop'] }]);
    expect(c.log.level).toBe('warn');
    writeFileSync(f, 'CLUSTR_NAME: typo\n');
    expect(fails({ ...base, CONFIG_FILE: f })).toContain('unknown setting "CLUSTR_NAME"');
  });

  it.each([
    ['KUBECONFIG', '/etc/kube/config', 'is read from the environment only'],
    ['POD_NAME', 'op-0', 'is set by Kubernetes (downward API)'],
    ['POD_NAMESPACE', 'anchore', 'is set by Kubernetes (downward API)'],
  ])('when CONFIG_FILE sets %s (which it cannot honour), then it is refused saying why, not silently ignored', (key, value, why) => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const f = join(dir, 'c.yaml');
    writeFileSync(f, `${key}: ${value}\n`);
    const message = fails({ ...base, CONFIG_FILE: f });
    expect(message.startsWith(`CONFIG_FILE ${f}: ${key} ${why}`)).toBe(true);
    expect(message.endsWith('; remove it from the file')).toBe(true);
  });

  describe('unknown variables in the environment (the container environment is the configuration)', () => {
    it.each([
      ['ANCHORE_ACOUNT', 'team-a', 'ANCHORE_ACCOUNT'],
      ['INVENTORY_INTERVAL', '30', 'INVENTORY_INTERVAL_SECONDS'],
      ['NAMESPACE_INCLUDE', 'shop', 'NAMESPACES_INCLUDE'],
      ['ADMISSION_ENABLE', 'true', 'ADMISSION_ENABLED'],
      ['METRICS_SECURED', 'true', 'METRICS_SECURE'],
      ['LEADER_ELECTION_ENABLED', 'false', 'LEADER_ELECTION'],
      ['ANCHORE_PASSWORD_FILES', '/secret/password', 'ANCHORE_PASSWORD_FILE'],
      // Shaped like a service-link variable by name, but not by value: a mistyped setting, not Kubernetes.
      ['ADMISSION_WEBHOOK_PORT', '9443', 'ADMISSION_PORT'],
      ['METRICS_SERVICE_HOST', 'metrics.example', 'METRICS_SECURE'],
      ['ANCHORE_OPERATOR_PORT_8080_TCP', 'tcp://10.96.0.12:9090', 'ANCHORE_RATE_BURST'],
    ])('when %s=%s is set, then it exits 2 with one line naming it and the closest setting (%s)', (name, value, closest) => {
      expect(fails({ ...base, [name]: value })).toBe(`${name} is not a setting of this operator (did you mean ${closest}?); the container's environment is its configuration, so correct or remove it`);
    });

    it('when Kubernetes injects the service-link variables of Services in the namespace (a Service named anchore-operator among them), then they are not settings and not refused', () => {
      // What the kubelet writes for Services anchore-operator (port 8080 named metrics), anchore-operator-webhook
      // (443, an IPv6 ClusterIP), metrics-server and admission (named like the operator's settings).
      const links: Record<string, string> = {
        ANCHORE_OPERATOR_SERVICE_HOST: '10.96.0.12',
        ANCHORE_OPERATOR_SERVICE_PORT: '8080',
        ANCHORE_OPERATOR_SERVICE_PORT_METRICS: '8080',
        ANCHORE_OPERATOR_PORT: 'tcp://10.96.0.12:8080',
        ANCHORE_OPERATOR_PORT_8080_TCP: 'tcp://10.96.0.12:8080',
        ANCHORE_OPERATOR_PORT_8080_TCP_PROTO: 'tcp',
        ANCHORE_OPERATOR_PORT_8080_TCP_PORT: '8080',
        ANCHORE_OPERATOR_PORT_8080_TCP_ADDR: '10.96.0.12',
        ANCHORE_OPERATOR_WEBHOOK_SERVICE_HOST: 'fd00:10:96::1f',
        ANCHORE_OPERATOR_WEBHOOK_SERVICE_PORT: '443',
        ANCHORE_OPERATOR_WEBHOOK_PORT: 'tcp://[fd00:10:96::1f]:443',
        ANCHORE_OPERATOR_WEBHOOK_PORT_443_TCP: 'tcp://[fd00:10:96::1f]:443',
        METRICS_SERVER_SERVICE_HOST: '10.96.0.40',
        METRICS_SERVER_PORT_443_TCP_ADDR: '10.96.0.40',
        ADMISSION_SERVICE_HOST: '10.96.0.41',
        ADMISSION_PORT_53_UDP: 'udp://10.96.0.41:53',
        ADMISSION_PORT_53_UDP_PROTO: 'udp',
        ANCHORE_API_SERVICE_PORT_ANCHORE_API: '8228',
        // Variables other software uses, whose first word only some settings share: not the operator's prefixes.
        POD_IP: '10.244.1.7',
        WATCH_NAMESPACE: 'shop',
        CLUSTER_DOMAIN: 'cluster.local',
        LOG_FORMAT: 'json',
        KUBERNETES_SERVICE_HOST: '10.96.0.1',
        NODE_OPTIONS: '--max-old-space-size=512',
      };
      const c = loadConfig({ ...base, ...links });
      expect(c.clusterName).toBe('prod');
      expect(c.admission.port).toBe(9443);
    });

    it('when a setting itself has the shape of a service-link variable (ADMISSION_PORT), then it is read as the setting', () => {
      expect(loadConfig({ ...base, ADMISSION_PORT: '8443' }).admission.port).toBe(8443);
      expect(fails({ ...base, ADMISSION_PORT: 'tcp://10.96.0.41:443' })).toBe('ADMISSION_PORT: "tcp://10.96.0.41:443" is not a whole number');
    });

    it('when the prefixes are listed, then they are the first words of the settings less the shared ones, and the README names each', () => {
      expect(RESERVED_PREFIXES).toEqual(expect.arrayContaining(['ANCHORE_', 'ADMISSION_', 'INVENTORY_', 'METRICS_', 'NAMESPACES_', 'NAMESPACE_', 'ACCOUNT_', 'LEADER_']));
      expect(RESERVED_PREFIXES).not.toContain('POD_');
      expect(RESERVED_PREFIXES).not.toContain('WATCH_');
      const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
      for (const p of RESERVED_PREFIXES) expect(readme).toContain(`\`${p}\``);
    });
  });

  it('when the config is described for logging, then no credential appears', () => {
    const text = JSON.stringify(describeConfig(loadConfig(base)));
    expect(text).not.toContain('s3cret-pw');
    expect(text).toContain('"auth":"basic"');
  });

  describe('admission', () => {
    it('when nothing is set, then the webhook is off, kube-system exempt, a 3 s deadline, unknown images registered within bounds, the controllers trusted', () => {
      const c = loadConfig({ ...base, POD_NAMESPACE: 'anchore-system' });
      expect(c.admission).toEqual({
        enabled: false,
        port: 9443,
        deadlineMs: 3000,
        exemptNamespaces: ['kube-system'],
        registerUnknown: true,
        registerLimits: { perReview: 5, perNamespacePerMinute: 20, perMinute: 60 },
        registerRepositories: [],
        trustedControllers: [
          'system:kube-controller-manager',
          'system:serviceaccount:kube-system:replicaset-controller',
          'system:serviceaccount:kube-system:deployment-controller',
          'system:serviceaccount:kube-system:job-controller',
          'system:serviceaccount:kube-system:cronjob-controller',
          'system:serviceaccount:kube-system:daemon-set-controller',
          'system:serviceaccount:kube-system:statefulset-controller',
          'system:serviceaccount:kube-system:replication-controller',
        ],
        shutdownDelayMs: 10_000,
        ownNamespace: 'anchore-system',
      });
    });

    it('when a register-repositories glob is malformed, then the config is refused naming the setting', () => {
      expect(() => loadConfig({ ...base, ADMISSION_REGISTER_REPOSITORIES: `ghcr.io/${'x'.repeat(1100)}` })).toThrow(/ADMISSION_REGISTER_REPOSITORIES/);
    });

    it('when it is enabled with a readable certificate and key, then they are used; the exempt list replaces the default', () => {
      const dir = mkdtempSync(join(tmpdir(), 'adm-cfg-'));
      writeFileSync(join(dir, 'tls.crt'), 'x');
      writeFileSync(join(dir, 'tls.key'), 'y');
      const c = loadConfig({
        ...base,
        ADMISSION_ENABLED: 'true',
        ADMISSION_CERT_FILE: join(dir, 'tls.crt'),
        ADMISSION_KEY_FILE: join(dir, 'tls.key'),
        ADMISSION_EXEMPT_NAMESPACES: 'kube-*,monitoring',
        ADMISSION_DEADLINE_MS: '1500',
      });
      expect(c.admission.tls).toEqual({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') });
      expect(c.admission.exemptNamespaces).toEqual(['kube-*', 'monitoring']);
      expect(c.admission.deadlineMs).toBe(1500);
    });

    it.each([
      [{ ADMISSION_ENABLED: 'true' }, 'ADMISSION_ENABLED needs ADMISSION_CERT_FILE and ADMISSION_KEY_FILE'],
      [{ ADMISSION_ENABLED: 'true', ADMISSION_CERT_FILE: '/nope/tls.crt', ADMISSION_KEY_FILE: '/nope/tls.key' }, 'ADMISSION_CERT_FILE /nope/tls.crt: cannot read (ENOENT)'],
      [{ ADMISSION_DEADLINE_MS: '30000' }, 'ADMISSION_DEADLINE_MS: 30000 is out of range 50..29000'],
      [{ ADMISSION_EXEMPT_NAMESPACES: 'x'.repeat(2000) }, 'ADMISSION_EXEMPT_NAMESPACES: invalid glob pattern'],
      [{ NAMESPACES_INCLUDE: 'x'.repeat(2000) }, 'NAMESPACES_INCLUDE: invalid glob pattern'],
      [{ ACCOUNT_ROUTES: `team-a:${'x'.repeat(2000)}` }, 'ACCOUNT_ROUTES: invalid glob pattern'],
      [{ REPORTS_METRICS: 'x'.repeat(2000) }, 'REPORTS_METRICS: invalid glob pattern'],
      // A pattern the image filter would refuse is refused here, as a config error (was: a crash when the scope was built).
      [{ IMAGES_EXCLUDE: 'nginx:*' }, 'IMAGES_EXCLUDE: invalid image exclusion "nginx:*"'],
      [{ METRICS_SECURE: 'true' }, 'METRICS_SECURE needs METRICS_CERT_FILE and METRICS_KEY_FILE'],
    ])('when %j, then the config is refused naming why', (env, message) => {
      expect(fails({ ...base, ...env })).toContain(message);
    });
  });
});
