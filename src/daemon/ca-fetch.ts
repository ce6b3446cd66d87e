/** fetch that also trusts the CA certificates in a PEM file (a gateway or IdP behind a private CA; AIGOV_CA_FILE). */
export async function caFetch(caFile: string): Promise<typeof fetch> {
  const [{ readFileSync }, { rootCertificates }, undici] = await Promise.all([import('node:fs'), import('node:tls'), import('undici')]);
  const dispatcher = new undici.Agent({ connect: { ca: [...rootCertificates, readFileSync(caFile, 'utf8')] } });
  const withCa = (input: unknown, init?: object): unknown => undici.fetch(input as Parameters<typeof undici.fetch>[0], { ...(init as Parameters<typeof undici.fetch>[1]), dispatcher });
  return withCa as typeof fetch;
}
