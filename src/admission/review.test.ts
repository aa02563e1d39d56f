import { describe, expect, it } from '@jest/globals';
import { REVIEWED_KINDS, newContainers, parseReview, reviewResponse, workloadOf } from './review.ts';

const podSpec = {
  initContainers: [{ name: 'init', image: 'busybox:1.36' }],
  containers: [
    { name: 'app', image: 'nginx:1.25' },
    { name: 'side', image: 'ghcr.io/acme/side@sha256:' + 'a'.repeat(64) },
  ],
  ephemeralContainers: [{ name: 'debug', image: 'alpine:3.20' }],
};
const template = { metadata: { labels: { app: 'web' }, annotations: { 'anchore.io/admission-breakglass': 'incident 42' } }, spec: podSpec };

describe('workloadOf', () => {
  it('when a Pod is reviewed, then init, regular and ephemeral containers are all returned with their kind', () => {
    const w = workloadOf('Pod', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'shop', labels: { app: 'web' } }, spec: podSpec }, 'shop');
    expect(w?.containers).toEqual([
      { name: 'init', kind: 'init', image: 'busybox:1.36' },
      { name: 'app', kind: 'container', image: 'nginx:1.25' },
      { name: 'side', kind: 'container', image: 'ghcr.io/acme/side@sha256:' + 'a'.repeat(64) },
      { name: 'debug', kind: 'ephemeral', image: 'alpine:3.20' },
    ]);
    expect(w?.podLabels).toEqual({ app: 'web' });
    expect(w?.name).toBe('p');
  });

  it.each([
    ['Deployment', { spec: { template } }],
    ['ReplicaSet', { spec: { template } }],
    ['StatefulSet', { spec: { template } }],
    ['DaemonSet', { spec: { template } }],
    ['Job', { spec: { template } }],
    ['CronJob', { spec: { jobTemplate: { spec: { template } } } }],
    ['ReplicationController', { spec: { template } }],
  ])('when a %s is reviewed, then its pod template gives labels, annotations and every container', (kind, obj) => {
    const w = workloadOf(kind, { apiVersion: 'apps/v1', kind, metadata: { name: 'w', annotations: { team: 'a' } }, ...obj }, 'shop');
    expect(w?.containers.map((c) => c.kind)).toEqual(['init', 'container', 'container', 'ephemeral']);
    expect(w?.podLabels).toEqual({ app: 'web' });
    expect(w?.annotations).toEqual({ team: 'a', 'anchore.io/admission-breakglass': 'incident 42' });
    expect(w?.namespace).toBe('shop');
  });

  it('when a ReplicationController is reviewed, then it is a checked kind, judged on spec.template, and a core v1 object when the review omits apiVersion', () => {
    expect(REVIEWED_KINDS).toContain('ReplicationController');
    const rc = { kind: 'ReplicationController', metadata: { name: 'legacy' }, spec: { replicas: 2, selector: { app: 'web' }, template } };
    const w = workloadOf('ReplicationController', rc, 'shop');
    expect(w).toMatchObject({ kind: 'ReplicationController', apiVersion: 'v1', namespace: 'shop', name: 'legacy', podLabels: { app: 'web' } });
    expect(w?.containers.map((c) => c.image)).toEqual(['busybox:1.36', 'nginx:1.25', 'ghcr.io/acme/side@sha256:' + 'a'.repeat(64), 'alpine:3.20']);
    // Its pod template, not a Pod-shaped spec at the top: a bare spec.containers is not what its pods run.
    expect(workloadOf('ReplicationController', { metadata: { name: 'x' }, spec: podSpec }, 'shop')?.containers).toEqual([]);
  });

  it('when a kind is not one the webhook checks, then there is no workload', () => {
    expect(workloadOf('ConfigMap', { metadata: {} }, 'shop')).toBeUndefined();
  });

  it('when a pod is not named yet, then its name is generateName* and its controller is kept for Events', () => {
    const w = workloadOf(
      'Pod',
      { metadata: { generateName: 'web-7d9-', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9', uid: 'u1', controller: true }] }, spec: podSpec },
      'shop',
    );
    expect(w?.name).toBe('web-7d9-*');
    expect(w?.owner).toEqual({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9', uid: 'u1' });
  });

  it('when the object is malformed, then fields that are not what they should be are ignored', () => {
    const w = workloadOf('Pod', { metadata: { labels: { a: 1 } }, spec: { containers: [null, { name: 'x' }, 'y'] } }, 'shop');
    expect(w?.containers).toEqual([{ name: 'x', kind: 'container', image: '' }]);
    expect(w?.podLabels).toEqual({});
  });
});

describe('newContainers', () => {
  it('when an update changes no image (scale, labels), then nothing is to be judged; a new image is', () => {
    const before = workloadOf('Deployment', { spec: { template } }, 'shop')!;
    expect(newContainers(before, before)).toEqual([]);
    const changed = workloadOf('Deployment', { spec: { template: { ...template, spec: { ...podSpec, containers: [{ name: 'app', image: 'nginx:1.27' }] } } } }, 'shop')!;
    expect(newContainers(changed, before)).toEqual([{ name: 'app', kind: 'container', image: 'nginx:1.27' }]);
  });
});

describe('parseReview', () => {
  it('when the body is an admission.k8s.io/v1 AdmissionReview, then the request is returned', () => {
    const r = parseReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE' } });
    expect(r.ok && r.request.uid).toBe('u');
  });

  it('when the review carries the full UserInfo, then username, uid, groups and extra all reach the validator (a SubjectAccessReview needs them)', () => {
    const userInfo = { username: 'alice', uid: 'u-42', groups: ['dev', 'system:authenticated'], extra: { 'authentication.kubernetes.io/credential-id': ['X509SHA256=ab'] } };
    const r = parseReview({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'ReplicationController' }, operation: 'CREATE', userInfo },
    });
    expect(r.ok && r.request.userInfo).toEqual(userInfo);
  });

  it.each([
    [[], 'not a JSON object'],
    [{ kind: 'Pod' }, 'expected AdmissionReview'],
    [{ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1beta1' }, 'not supported'],
    [{ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1' }, 'request is missing'],
    [{ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: { kind: { kind: 'Pod' }, operation: 'CREATE' } }, 'uid'],
    [{ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: { uid: 'u', kind: { kind: 'Pod' }, operation: 'PATCH' } }, 'operation'],
  ])('when the body is %j, then it is refused naming what is wrong', (body, why) => {
    const r = parseReview(body);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(why);
  });

  it('when answering, then the response is an AdmissionReview echoing the uid', () => {
    expect(JSON.parse(reviewResponse({ uid: 'u', allowed: true }))).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u', allowed: true } });
  });
});
