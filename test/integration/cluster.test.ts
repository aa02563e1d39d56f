// Proves the test cluster is a real Kubernetes API with the properties the operator's tests rely on: RBAC is
// enforced, ServiceAccount tokens can be minted, Deployments become Running pods whose container statuses look
// like a containerd node's (imageID with a stable per-image digest, containerID), and namespaces delete fully.
// Runs against the local kwok cluster or, with USE_EXISTING_CLUSTER=true, against kind (real, pullable images).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { connectionFromKubeconfig, kubeRequest } from '../cluster/kube-api.ts';

// jest ignores `testTimeout` inside a `projects` entry (it is a global option), so set it here: namespace
// deletion alone takes >5 s (the namespace controller waits 5 s before it starts).
jest.setTimeout(120_000);

const kubeconfig = process.env['TEST_KUBECONFIG'] ?? '';
const kubectlBin = process.env['TEST_KUBECTL'] ?? 'kubectl';
const isLocal = process.env['TEST_CLUSTER_KIND'] === 'local';
const ns = `it-cluster-${Date.now().toString(36)}`;

function kubectl(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(kubectlBin, ['--kubeconfig', kubeconfig, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kubectl ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function kubectlJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

async function waitUntil<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface ContainerStatus {
  name: string;
  image: string;
  imageID: string;
  containerID?: string;
  ready: boolean;
  started?: boolean;
  state: { running?: { startedAt: string }; terminated?: { exitCode: number; reason?: string } };
}
interface Pod {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string };
  status: { phase?: string; containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[] };
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const CONTAINER_ID = /^containerd:\/\/[0-9a-f]{64}$/;
const digestOf = (imageID: string): string => imageID.slice(imageID.indexOf('@') + 1);

function podManifest(name: string, containers: { name: string; image: string }[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, ...(extra['metadata'] as object | undefined) },
    spec: { terminationGracePeriodSeconds: 0, containers, ...(extra['spec'] as object | undefined) },
  });
}

async function runningPod(name: string): Promise<Pod> {
  return waitUntil(`pod ${name} Running`, async () => {
    const pod = await kubectlJson<Pod>(['-n', ns, 'get', 'pod', name]);
    return pod.status.phase === 'Running' && (pod.status.containerStatuses ?? []).every((c) => c.ready && c.imageID) ? pod : undefined;
  });
}

describe('test cluster', () => {
  let nginx125Digest = '';

  beforeAll(async () => {
    expect(kubeconfig).not.toBe('');
    await kubectl(['create', 'namespace', ns]);
    // Pods are only admitted once KCM created the namespace's default ServiceAccount.
    await waitUntil('default ServiceAccount', async () => ((await kubectl(['-n', ns, 'get', 'serviceaccounts', '-o', 'name'])).includes('serviceaccount/default') ? true : undefined));
  });

  afterAll(async () => {
    await kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  });

  it('enforces RBAC: a minted ServiceAccount token authenticates but may not list secrets', async () => {
    await kubectl(['-n', ns, 'create', 'serviceaccount', 'nobody']);
    const token = (await kubectl(['-n', ns, 'create', 'token', 'nobody', '--duration=10m'])).trim();
    const admin = connectionFromKubeconfig(kubeconfig);
    const asNobody = { server: admin.server, ...(admin.ca ? { ca: admin.ca } : {}), token };

    const review = await kubeRequest(asNobody, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'SelfSubjectReview',
    });
    expect(review.status).toBe(201);
    expect((review.body as { status: { userInfo: { username: string } } }).status.userInfo.username).toBe(`system:serviceaccount:${ns}:nobody`);

    const clusterWide = await kubeRequest(asNobody, 'GET', '/api/v1/secrets');
    expect(clusterWide.status).toBe(403);
    const inOwnNamespace = await kubeRequest(asNobody, 'GET', `/api/v1/namespaces/${ns}/secrets`);
    expect(inOwnNamespace.status).toBe(403);
    // The admin kubeconfig can, so the 403s are authorization, not a broken endpoint.
    await expect(kubectl(['-n', ns, 'get', 'secrets'])).resolves.toBeDefined();
  });

  it('runs a 3-replica Deployment to Running pods with containerd-like container statuses', async () => {
    const t0 = Date.now();
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: ns },
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'nginx', image: 'nginx:1.25' }] },
          },
        },
      }),
    );
    const pods = await waitUntil('3 Running pods', async () => {
      const list = await kubectlJson<{ items: Pod[] }>(['-n', ns, 'get', 'pods', '-l', 'app=web']);
      const running = list.items.filter((p) => p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.ready);
      return running.length === 3 ? running : undefined;
    });
    console.info(`[cluster.test] Deployment web: 3 pods Running ${Date.now() - t0} ms after apply`);

    const statuses = pods.map((p) => p.status.containerStatuses?.[0] as ContainerStatus);
    for (const s of statuses) {
      expect(s.imageID).toMatch(/^docker\.io\/library\/nginx@sha256:[0-9a-f]{64}$/);
      expect(s.containerID).toMatch(CONTAINER_ID);
      expect(s.ready).toBe(true);
      expect(s.started).toBe(true);
      expect(s.state.running?.startedAt).toEqual(expect.any(String));
    }
    expect(new Set(statuses.map((s) => s.imageID)).size).toBe(1);
    expect(new Set(statuses.map((s) => s.containerID)).size).toBe(3);
    nginx125Digest = digestOf(statuses[0]?.imageID ?? '');
    expect(nginx125Digest).toMatch(DIGEST);
  });

  it('gives another tag another digest, and keeps a digest pinned in the spec', async () => {
    expect(nginx125Digest).toMatch(DIGEST);
    await kubectl(['apply', '-f', '-'], podManifest('tag126', [{ name: 'nginx', image: 'nginx:1.26' }]));
    await kubectl(['apply', '-f', '-'], podManifest('pinned', [{ name: 'nginx', image: `nginx@${nginx125Digest}` }]));

    const other = (await runningPod('tag126')).status.containerStatuses?.[0];
    expect(other?.imageID).toMatch(/^docker\.io\/library\/nginx@sha256:[0-9a-f]{64}$/);
    expect(digestOf(other?.imageID ?? '')).not.toBe(nginx125Digest);

    const pinned = (await runningPod('pinned')).status.containerStatuses?.[0];
    expect(pinned?.imageID).toBe(`docker.io/library/nginx@${nginx125Digest}`);
  });

  // Fake registries cannot be pulled by a real node, so this one only runs under kwok.
  (isLocal ? it : it.skip)('normalises references the way containerd reports them (kwok stages)', async () => {
    const sha = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;
    const pinned = `sha256:${'b'.repeat(64)}`;
    const overridden = `sha256:${'1'.repeat(64)}`;
    await kubectl(
      ['apply', '-f', '-'],
      podManifest(
        'refs',
        [
          { name: 'bare', image: 'busybox' },
          { name: 'user', image: 'user/repo:tag' },
          { name: 'quay', image: 'quay.io/prometheus/node-exporter:v1.8.0' },
          { name: 'local', image: 'localhost:5000/foo/bar:1' },
          { name: 'port', image: 'registry.example.com:443/team/app' },
          { name: 'both', image: `index.docker.io/library/alpine:3.20@${pinned}` },
          { name: 'retagged', image: 'nginx:1.25' },
        ],
        {
          metadata: { annotations: { 'image-digest.kwok.anchore.local/retagged': overridden } },
          spec: {
            initContainers: [
              { name: 'init', image: 'busybox:1.36' },
              { name: 'sidecar', image: 'envoyproxy/envoy:v1.31.0', restartPolicy: 'Always' },
            ],
          },
        },
      ),
    );
    const pod = await runningPod('refs');
    const byName = new Map([...(pod.status.containerStatuses ?? []), ...(pod.status.initContainerStatuses ?? [])].map((c) => [c.name, c]));
    const expected: Record<string, [image: string, imageID: string]> = {
      bare: ['docker.io/library/busybox:latest', `docker.io/library/busybox@${sha('docker.io/library/busybox:latest')}`],
      user: ['docker.io/user/repo:tag', `docker.io/user/repo@${sha('docker.io/user/repo:tag')}`],
      quay: ['quay.io/prometheus/node-exporter:v1.8.0', `quay.io/prometheus/node-exporter@${sha('quay.io/prometheus/node-exporter:v1.8.0')}`],
      local: ['localhost:5000/foo/bar:1', `localhost:5000/foo/bar@${sha('localhost:5000/foo/bar:1')}`],
      port: ['registry.example.com:443/team/app:latest', `registry.example.com:443/team/app@${sha('registry.example.com:443/team/app:latest')}`],
      both: [`docker.io/library/alpine@${pinned}`, `docker.io/library/alpine@${pinned}`],
      retagged: ['docker.io/library/nginx:1.25', `docker.io/library/nginx@${overridden}`],
      init: ['docker.io/library/busybox:1.36', `docker.io/library/busybox@${sha('docker.io/library/busybox:1.36')}`],
      sidecar: ['docker.io/envoyproxy/envoy:v1.31.0', `docker.io/envoyproxy/envoy@${sha('docker.io/envoyproxy/envoy:v1.31.0')}`],
    };
    for (const [name, [image, imageID]] of Object.entries(expected)) {
      const s = byName.get(name);
      expect({ name, image: s?.image, imageID: s?.imageID }).toEqual({ name, image, imageID });
      expect(s?.containerID).toBe(`containerd://${createHash('sha256').update(`${pod.metadata.uid}/${name}`).digest('hex')}`);
    }
    // The same digest rule as the Deployment above: nginx:1.25 is sha256 of its normalised reference.
    expect(nginx125Digest).toBe(sha('docker.io/library/nginx:1.25'));
    expect(byName.get('init')?.state.terminated?.reason).toBe('Completed');
    expect(byName.get('sidecar')?.state.running).toBeDefined();
  });

  it('deletes the namespace completely', async () => {
    const t0 = Date.now();
    await kubectl(['delete', 'namespace', ns, '--wait=false']);
    await waitUntil(
      `namespace ${ns} gone`,
      async () => {
        const out = await kubectl(['get', 'namespace', ns, '--ignore-not-found', '-o', 'name']);
        return out.trim() === '' ? true : undefined;
      },
      110_000,
    );
    console.info(`[cluster.test] namespace deleted ${Date.now() - t0} ms after delete`);
  });
});
