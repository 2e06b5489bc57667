import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface CertSet {
  dir: string;
  /** A CA certificate and key (PEM paths). */
  caCert: string;
  caKey: string;
  /** A server certificate for CN=localhost, SAN localhost/127.0.0.1/::1, signed by the CA. */
  serverCert: string;
  serverKey: string;
  /** A client certificate for CN=alice, signed by the CA. */
  clientCert: string;
  clientKey: string;
  /** A self-signed certificate (no CA), CN=vnc.internal. */
  selfCert: string;
  selfKey: string;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Make a throw-away PKI with the real openssl binary. */
export function makeCerts(): CertSet {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsockify-certs-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tsockify test CA'], dir);
  const issue = (name: string, cn: string, ext: string): void => {
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
  };
  issue('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n');
  issue('client', 'alice', 'extendedKeyUsage=clientAuth\n');
  openssl(['req', '-x509', ...ec, '-keyout', 'self.key', '-out', 'self.pem', '-days', '2', '-subj', '/CN=vnc.internal'], dir);
  const p = (f: string): string => path.join(dir, f);
  return {
    dir,
    caCert: p('ca.pem'),
    caKey: p('ca.key'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    selfCert: p('self.pem'),
    selfKey: p('self.key'),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
