import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { stringify } from 'yaml';
import { KubeconfigError, loadKubeEndpoint } from './kubeconfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(
  name: string,
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = { server: 'https://10.0.0.1:6443/', 'certificate-authority-data': Buffer.from('CA PEM').toString('base64') },
): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'c',
      contexts: [
        { name: 'c', context: { cluster: 'k', user: 'u' } },
        { name: 'other', context: { cluster: 'x', user: 'y' } },
      ],
      clusters: [{ name: 'k', cluster }],
      users: [{ name: 'u', user }],
    }),
  );
  return path;
}

describe('loadKubeEndpoint', () => {
  it('when the user has a token, then it is a bearer token against the server without a trailing slash, CA from the data', () => {
    const e = loadKubeEndpoint(write('token.yaml', { token: 'abc' }), {});
    expect(e.server).toBe('https://10.0.0.1:6443');
    expect(e.auth).toEqual({ type: 'token', token: 'abc' });
    expect(e.tls.ca?.toString()).toBe('CA PEM');
    expect(e.tls.rejectUnauthorized).toBe(true);
  });

  it('when certificate and key are files relative to the kubeconfig, then they are read from its folder', () => {
    writeFileSync(join(dir, 'client.crt'), 'CERT');
    writeFileSync(join(dir, 'client.key'), 'KEY');
    writeFileSync(join(dir, 'ca.crt'), 'CAFILE');
    const e = loadKubeEndpoint(
      write('certs.yaml', { 'client-certificate': 'client.crt', 'client-key': 'client.key' }, { server: 'https://a:1', 'certificate-authority': 'ca.crt', 'tls-server-name': 'kubernetes' }),
      {},
    );
    expect([e.tls.cert?.toString(), e.tls.key?.toString(), e.tls.ca?.toString(), e.tls.servername]).toEqual(['CERT', 'KEY', 'CAFILE', 'kubernetes']);
    expect(e.auth).toEqual({ type: 'none' });
  });

  it('when the user runs an exec plugin, then resolution is left to client-node (loaded on demand)', () => {
    const path = write('exec.yaml', { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws' } });
    expect(loadKubeEndpoint(path, {}).auth).toEqual({ type: 'plugin', kubeconfigPath: path, context: 'c' });
  });

  it('when insecure-skip-tls-verify is set, then verification is off only because the kubeconfig says so', () => {
    expect(loadKubeEndpoint(write('insecure.yaml', { token: 't' }, { server: 'https://a:1', 'insecure-skip-tls-verify': true }), {}).tls.rejectUnauthorized).toBe(false);
  });

  it('when a referenced file is missing or the file is not there, then the error names the file', () => {
    expect(() => loadKubeEndpoint(write('missing.yaml', { 'client-certificate': 'nope.crt' }), {})).toThrow(/cannot read .*nope\.crt \(ENOENT\)/);
    expect(() => loadKubeEndpoint(join(dir, 'absent.yaml'), {})).toThrow(KubeconfigError);
  });

  it('when no path is given outside a pod, then $KUBECONFIG (first entry) is used', () => {
    const path = write('env.yaml', { username: 'u', password: 'p' });
    expect(loadKubeEndpoint(undefined, { KUBECONFIG: `${path}:/elsewhere` }).auth).toEqual({ type: 'basic', username: 'u', password: 'p' });
  });

  it('when running in a pod without a mounted service account, then the error says so', () => {
    expect(() => loadKubeEndpoint(undefined, { KUBERNETES_SERVICE_HOST: '10.96.0.1' })).toThrow(/automountServiceAccountToken/);
  });
});
