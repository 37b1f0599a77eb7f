/**
 * TLS 1.3 with AES-GCM only, for every TLS meshd speaks (the data plane, the API): Docker's overlay
 * encryption uses AES-GCM too.
 */
export const tlsOptions = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384',
} as const;
