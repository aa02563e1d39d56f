// Where the apiserver is and how to authenticate, read without @kubernetes/client-node for the common cases:
// in-cluster service-account tokens (the production case) and kubeconfigs with a token, token file, basic auth or a
// client certificate. Importing client-node costs ~85 MiB of RSS (its KubeConfig pulls in the whole generated API),
// more than half of the operator's memory budget at 10,000 pods, so it is loaded only for kubeconfigs that need its
// auth plugins (`exec`, `auth-provider`). See docs/performance.md.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

type KubeAuth =
  | { type: 'none' }
  | { type: 'token'; token: string }
  /** Re-read periodically: kubelet rotates projected service-account tokens. */
  | { type: 'tokenFile'; path: string }
  | { type: 'basic'; username: string; password: string }
  /** exec / auth-provider users: resolved by client-node's KubeConfig, loaded on demand. */
  | { type: 'plugin'; kubeconfigPath: string; context: string };

export interface KubeEndpoint {
  server: string;
  tls: TlsMaterial;
  auth: KubeAuth;
  /** Where it came from, for error messages. */
  source: string;
}

export class KubeconfigError extends Error {
  override readonly name = 'KubeconfigError';
}

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: Array<{ name: string; context?: { cluster?: string; user?: string } }>;
  clusters?: Array<{
    name: string;
    cluster?: { server?: string; 'certificate-authority'?: string; 'certificate-authority-data'?: string; 'insecure-skip-tls-verify'?: boolean; 'tls-server-name'?: string };
  }>;
  users?: Array<{
    name: string;
    user?: {
      token?: string;
      tokenFile?: string;
      username?: string;
      password?: string;
      'client-certificate'?: string;
      'client-certificate-data'?: string;
      'client-key'?: string;
      'client-key-data'?: string;
      exec?: unknown;
      'auth-provider'?: unknown;
    };
  }>;
}

/**
 * Resolves the endpoint: an explicit kubeconfig path; else in-cluster (KUBERNETES_SERVICE_HOST + the mounted
 * service account); else $KUBECONFIG (first file) or ~/.kube/config.
 * @throws KubeconfigError naming the file and the missing piece.
 */
export function loadKubeEndpoint(kubeconfig?: string, env: NodeJS.ProcessEnv = process.env): KubeEndpoint {
  if (!kubeconfig && env['KUBERNETES_SERVICE_HOST']) return inCluster(env);
  const path = kubeconfig || (env['KUBECONFIG'] ?? '').split(':').find(Boolean) || join(homedir(), '.kube', 'config');
  return fromKubeconfig(path);
}

function inCluster(env: NodeJS.ProcessEnv): KubeEndpoint {
  const host = env['KUBERNETES_SERVICE_HOST']!;
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
  const read = (f: string): Buffer => {
    try {
      return readFileSync(join(SERVICE_ACCOUNT_DIR, f));
    } catch (err) {
      throw new KubeconfigError(`running in a pod but ${join(SERVICE_ACCOUNT_DIR, f)} is unreadable (${(err as NodeJS.ErrnoException).code}); is automountServiceAccountToken off?`);
    }
  };
  read('token');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    tls: { ca: read('ca.crt'), rejectUnauthorized: true },
    auth: { type: 'tokenFile', path: join(SERVICE_ACCOUNT_DIR, 'token') },
    source: 'in-cluster service account',
  };
}

function fromKubeconfig(path: string): KubeEndpoint {
  let doc: KubeconfigFile;
  try {
    doc = (parseYaml(readFileSync(path, 'utf8')) ?? {}) as KubeconfigFile;
  } catch (err) {
    throw new KubeconfigError(`kubeconfig ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0]}`);
  }
  const base = dirname(path);
  const file = (p: string): Buffer => {
    const full = isAbsolute(p) ? p : join(base, p);
    try {
      return readFileSync(full);
    } catch (err) {
      throw new KubeconfigError(`kubeconfig ${path}: cannot read ${full} (${(err as NodeJS.ErrnoException).code})`);
    }
  };
  const contextName = doc['current-context'];
  const ctx = doc.contexts?.find((c) => c.name === contextName)?.context;
  if (!contextName || !ctx) throw new KubeconfigError(`kubeconfig ${path}: no current context`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster?.server) throw new KubeconfigError(`kubeconfig ${path}: context "${contextName}" names no cluster with a server`);
  const user = doc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  const tls: TlsMaterial = { rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true };
  if (cluster['certificate-authority-data']) tls.ca = Buffer.from(cluster['certificate-authority-data'], 'base64');
  else if (cluster['certificate-authority']) tls.ca = file(cluster['certificate-authority']);
  if (cluster['tls-server-name']) tls.servername = cluster['tls-server-name'];
  if (user['client-certificate-data']) tls.cert = Buffer.from(user['client-certificate-data'], 'base64');
  else if (user['client-certificate']) tls.cert = file(user['client-certificate']);
  if (user['client-key-data']) tls.key = Buffer.from(user['client-key-data'], 'base64');
  else if (user['client-key']) tls.key = file(user['client-key']);
  let auth: KubeAuth = { type: 'none' };
  if (user.exec || user['auth-provider']) auth = { type: 'plugin', kubeconfigPath: path, context: contextName };
  else if (user.token) auth = { type: 'token', token: user.token };
  else if (user.tokenFile) auth = { type: 'tokenFile', path: isAbsolute(user.tokenFile) ? user.tokenFile : join(base, user.tokenFile) };
  else if (user.username && user.password) auth = { type: 'basic', username: user.username, password: user.password };
  return { server: cluster.server.replace(/\/+$/, ''), tls, auth, source: `kubeconfig ${path} (context ${contextName})` };
}
