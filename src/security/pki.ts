import { createHash, randomBytes, webcrypto, X509Certificate } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type X509Lib = typeof import('@peculiar/x509');

let x509Lib: Promise<X509Lib> | undefined;

/**
 * @peculiar/x509 (and the reflect polyfill it needs) costs a quarter of a second to load, so it is
 * loaded when a certificate is first made or signed, not at start-up: reading certificates uses
 * Node's own X509Certificate.
 */
function lib(): Promise<X509Lib> {
  x509Lib ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return x509Lib;
}

/** ECDSA P-256: small keys, fast handshakes, what Docker's swarm CA uses too. */
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A certificate and its private key, both PEM. */
export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

function pem(der: ArrayBuffer, label: string): string {
  const b64 =
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g)
      ?.join('\n') ?? '';
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

async function importKey(keyPem: string): Promise<CryptoKey> {
  const der = Buffer.from(keyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, alg, true, ['sign']) as Promise<CryptoKey>;
}

function serial(): string {
  return randomBytes(16)
    .toString('hex')
    .replace(/^[89a-f]/, '1');
}

/** Creates the cluster CA, valid for ten years (its rotation is not automatic). */
export async function createCa(clusterId: string): Promise<KeyPair> {
  const x509 = await lib();
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=meshd cluster CA ${clusterId}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 10 * 365 * 86_400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return {
    cert: cert.toString('pem'),
    key: pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY'),
  };
}

/** A new node key and a certificate request for the node id (the subject CN). */
export async function createRequest(nodeId: string): Promise<{ key: string; csr: string }> {
  const x509 = await lib();
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${nodeId}`,
    keys,
    signingAlgorithm: alg,
  });
  return {
    key: pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY'),
    csr: csr.toString('pem'),
  };
}

/** Signs a node's request: the CN must be the node id it claims, the certificate lives `validMs`. */
export async function signRequest(
  ca: KeyPair,
  csrPem: string,
  nodeId: string,
  validMs: number,
  ips: readonly string[] = [],
): Promise<string> {
  const x509 = await lib();
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  if (!(await csr.verify())) throw new Error('certificate request signature does not verify');
  if (csr.subject !== `CN=${nodeId}`)
    throw new Error(`certificate request is for ${csr.subject}, not CN=${nodeId}`);
  const caCert = new x509.X509Certificate(ca.cert);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: csr.subject,
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + validMs),
    signingKey: await importKey(ca.key),
    publicKey: csr.publicKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: nodeId },
        ...ips.map((ip) => ({ type: 'ip' as const, value: ip })),
      ]),
    ],
  });
  return cert.toString('pem');
}

/** The node id a certificate names (its subject CN). */
export function certNodeId(certPem: string): string {
  return new X509Certificate(certPem).subject.replace(/^CN=/, '').trim();
}

/** When a certificate became valid (its notBefore). */
export function certIssued(certPem: string): Date {
  return new Date(new X509Certificate(certPem).validFrom);
}

export function certExpiry(certPem: string): Date {
  return new Date(new X509Certificate(certPem).validTo);
}

/** SHA-256 of the certificate's DER: what a join token pins. */
export function certDigest(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

/** Signs `data` with a node key (proof of holding the key when renewing its certificate). */
export async function signWithKey(keyPem: string, data: string): Promise<string> {
  const sig = await webcrypto.subtle.sign(alg, await importKey(keyPem), Buffer.from(data));
  return Buffer.from(sig).toString('base64');
}

/**
 * Checks a renewal: `cert` is a current certificate of our CA for `nodeId`, and `signature` over
 * `data` was made with its key.
 */
export async function verifyRenewal(
  caPem: string,
  certPem: string,
  nodeId: string,
  data: string,
  signature: string,
): Promise<boolean> {
  const x509 = await lib();
  const ca = new x509.X509Certificate(caPem);
  const cert = new x509.X509Certificate(certPem);
  if (cert.subject !== `CN=${nodeId}`) return false;
  if (!(await cert.verify({ publicKey: ca.publicKey, date: new Date() }))) return false;
  const key = await cert.publicKey.export(alg, ['verify']);
  return webcrypto.subtle.verify(
    alg,
    key as webcrypto.CryptoKey,
    Buffer.from(signature, 'base64'),
    Buffer.from(data),
  );
}

/** Whether a peer's certificate (DER) is signed by our CA and valid now. */
export async function verifyPeer(der: Buffer, caPem: string): Promise<boolean> {
  try {
    const cert = new X509Certificate(der);
    const ca = new X509Certificate(caPem);
    const now = Date.now();
    return (
      cert.verify(ca.publicKey) &&
      new Date(cert.validFrom).getTime() <= now &&
      now <= new Date(cert.validTo).getTime()
    );
  } catch {
    return false;
  }
}
