// Certificates and keys for the local control plane. node:crypto makes the keys; it cannot issue X.509
// certificates, so the `openssl` CLI signs them. Everything is written once and reused, so a kept cluster
// (`down --keep-data`) comes back with the same CA and service-account tokens stay valid.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** File paths of the cluster's PKI (all PEM). */
export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  /** Serving certificate for the apiserver (also reused by KCM and scheduler): 127.0.0.1, localhost, kubernetes.*. */
  servingCert: string;
  servingKey: string;
  /** Client certificate CN=kubernetes-admin, O=system:masters. */
  adminCert: string;
  adminKey: string;
  /** Client certificate the apiserver presents to aggregated API servers (requestheader auth). */
  frontProxyCert: string;
  frontProxyKey: string;
  /** RSA key pair that signs and verifies service-account tokens. */
  saKey: string;
  saPub: string;
  /** Static token file (token,user,uid,"groups") with one system:masters token. */
  tokenFile: string;
  adminToken: string;
}

function writeKey(file: string): void {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  fs.writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0] ?? ''} failed: ${e.stderr?.toString().trim() || e.message}`);
  }
}

function sign(dir: string, name: string, subject: string, extensions: string, pki: { caCert: string; caKey: string }): void {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  writeKey(key);
  fs.writeFileSync(ext, extensions);
  openssl(['req', '-new', '-key', key, '-subj', subject, '-out', csr], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      pki.caCert,
      '-CAkey',
      pki.caKey,
      '-set_serial',
      `0x${crypto.randomBytes(12).toString('hex')}`,
      '-days',
      '3650',
      '-sha256',
      '-extfile',
      ext,
      '-out',
      path.join(dir, `${name}.crt`),
    ],
    dir,
  );
  fs.rmSync(csr);
  fs.rmSync(ext);
}

/**
 * Creates (or reuses) the PKI under `dir`. Returns the file paths; generation takes ~0.3 s (three RSA keys and
 * three openssl invocations).
 */
export function ensurePki(dir: string): Pki {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = (f: string): string => path.join(dir, f);
  const pki: Pki = {
    dir,
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    servingCert: p('serving.crt'),
    servingKey: p('serving.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
    frontProxyCert: p('front-proxy-client.crt'),
    frontProxyKey: p('front-proxy-client.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
    tokenFile: p('tokens.csv'),
    adminToken: '',
  };
  const complete = [pki.caCert, pki.caKey, pki.servingCert, pki.servingKey, pki.adminCert, pki.adminKey, pki.frontProxyCert, pki.frontProxyKey, pki.saKey, pki.saPub, pki.tokenFile].every((f) =>
    fs.existsSync(f),
  );
  if (!complete) {
    writeKey(pki.caKey);
    openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        pki.caKey,
        '-subj',
        '/CN=anchore-operator-test-ca',
        '-days',
        '3650',
        '-sha256',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
        '-out',
        pki.caCert,
      ],
      dir,
    );
    sign(
      dir,
      'serving',
      '/CN=kube-apiserver',
      [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        // 10.96.0.1 is the `kubernetes` Service IP for --service-cluster-ip-range=10.96.0.0/16.
        'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
        '',
      ].join('\n'),
      pki,
    );
    sign(dir, 'admin', '/O=system:masters/CN=kubernetes-admin', ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth', ''].join('\n'), pki);
    sign(dir, 'front-proxy-client', '/CN=front-proxy-client', ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth', ''].join('\n'), pki);
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(pki.saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    fs.writeFileSync(pki.saPub, publicKey.export({ type: 'spki', format: 'pem' }));
    const token = crypto.randomBytes(24).toString('hex');
    fs.writeFileSync(pki.tokenFile, `${token},kubernetes-admin-token,admin-token-uid,"system:masters"\n`, { mode: 0o600 });
  }
  pki.adminToken = (fs.readFileSync(pki.tokenFile, 'utf8').split(',')[0] ?? '').trim();
  return pki;
}
