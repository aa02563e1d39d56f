// A deliberately tiny HTTPS client for the Kubernetes API, used by the cluster harness and by tests that must not
// depend on the code under test (@kubernetes/client-node). It verifies the server against the kubeconfig's CA.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { parse as parseYaml } from 'yaml';

/** Where and how to reach an apiserver. Exactly one of token or cert/key is normally set. */
export interface KubeConnection {
  server: string;
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
}

/** A decoded API response; body is parsed JSON when the response was JSON, else the raw text. */
export interface KubeResponse {
  status: number;
  body: unknown;
  text: string;
}

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: { name: string; context: { cluster: string; user: string } }[];
  clusters?: { name: string; cluster: { server: string; 'certificate-authority-data'?: string; 'certificate-authority'?: string } }[];
  users?: {
    name: string;
    user: {
      token?: string;
      'client-certificate-data'?: string;
      'client-key-data'?: string;
      'client-certificate'?: string;
      'client-key'?: string;
    };
  }[];
}

function fromFileOrData(data: string | undefined, file: string | undefined): string | undefined {
  if (data) return Buffer.from(data, 'base64').toString('utf8');
  if (file) return fs.readFileSync(file, 'utf8');
  return undefined;
}

/**
 * Reads the current context of a kubeconfig into a connection. Handles inline (`*-data`) and file references and
 * static tokens; exec/auth-provider plugins are not supported (kind and the local cluster do not use them).
 */
export function connectionFromKubeconfig(kubeconfigPath: string, contextName?: string): KubeConnection {
  const cfg = parseYaml(fs.readFileSync(kubeconfigPath, 'utf8')) as KubeconfigFile;
  const ctxName = contextName ?? cfg['current-context'];
  const ctx = cfg.contexts?.find((c) => c.name === ctxName)?.context;
  if (!ctx) throw new Error(`kubeconfig ${kubeconfigPath}: context ${ctxName ?? '(none)'} not found`);
  const cluster = cfg.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster) throw new Error(`kubeconfig ${kubeconfigPath}: cluster ${ctx.cluster} not found`);
  const user = cfg.users?.find((u) => u.name === ctx.user)?.user ?? {};
  const conn: KubeConnection = { server: cluster.server.replace(/\/+$/, '') };
  const ca = fromFileOrData(cluster['certificate-authority-data'], cluster['certificate-authority']);
  if (ca) conn.ca = ca;
  const cert = fromFileOrData(user['client-certificate-data'], user['client-certificate']);
  const key = fromFileOrData(user['client-key-data'], user['client-key']);
  if (cert && key) {
    conn.cert = cert;
    conn.key = key;
  }
  if (user.token) conn.token = user.token;
  return conn;
}

/**
 * Sends one request. `body` objects are sent as JSON; pass `contentType` for patches. Never throws on HTTP error
 * statuses (callers assert on `status`), only on transport errors or the timeout.
 */
export function kubeRequest(
  conn: KubeConnection,
  method: string,
  apiPath: string,
  body?: unknown,
  opts: { contentType?: string; timeoutMs?: number; agent?: https.Agent } = {},
): Promise<KubeResponse> {
  const url = new URL(conn.server + apiPath);
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (payload !== undefined) {
    headers['Content-Type'] = opts.contentType ?? 'application/json';
    headers['Content-Length'] = String(Buffer.byteLength(payload));
  }
  if (conn.token) headers['Authorization'] = `Bearer ${conn.token}`;
  const isHttps = url.protocol === 'https:';
  const options: https.RequestOptions = { method, headers, timeout: opts.timeoutMs ?? 10_000 };
  if (isHttps) {
    if (conn.ca) options.ca = conn.ca;
    if (conn.cert) options.cert = conn.cert;
    if (conn.key) options.key = conn.key;
    // A fresh agent per request unless the caller keeps one: keep-alive sockets would keep short-lived CLI processes
    // from exiting.
    options.agent = opts.agent ?? false;
  }
  return new Promise((resolve, reject) => {
    const req = (isHttps ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        // Some endpoints (etcd /health) send JSON as text/plain, so sniff as well.
        if ((res.headers['content-type'] ?? '').includes('json') || /^\s*[[{]/.test(text)) {
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text;
          }
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url.href}: timed out`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
