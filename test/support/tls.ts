import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A self-signed serving certificate (openssl, as the local cluster's PKI does); it is its own CA. By default for
 * 127.0.0.1, `extraIps` and localhost; `subjectAltName` replaces that list (a certificate for another host).
 */
export function selfSigned(dir: string, cn: string, extraIps: string[] = [], subjectAltName?: string): { certFile: string; keyFile: string; pem: string } {
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      `subjectAltName=${subjectAltName ?? `${['127.0.0.1', ...extraIps].map((ip) => `IP:${ip}`).join(',')},DNS:localhost`}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile, pem: readFileSync(certFile, 'utf8') };
}
