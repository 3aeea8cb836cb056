/** Test certificates made by openssl: a CA and a leaf for 127.0.0.1/localhost signed by it, as
 * PEM strings ({@link makeCerts}) or files ({@link writeCerts}). The one copy of the openssl steps
 * for every TLS test (gateway TLS, the transport's TLS front, NATS over TLS).
 * @module */

async function _openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

/** PEM strings of a fresh CA and a leaf certificate (with its key) signed by it. */
export interface TestCerts {
  /** CA certificate, for `caCerts` of a client. */
  ca: string;
  /** Leaf certificate chain for the server. */
  cert: string;
  /** Leaf private key. */
  key: string;
}

/**
 * Makes a fresh CA named `caName` and a P-256 leaf for `IP:127.0.0.1, DNS:localhost` signed by it,
 * in a temp dir (removed after). Two calls give two CAs that do not trust each other's leaves.
 *
 * @example
 * ```ts
 * const certs = await makeCerts();
 * const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [certs.ca] });
 * ```
 */
export async function makeCerts(caName = "ca"): Promise<TestCerts> {
  const dir = await Deno.makeTempDir();
  try {
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    await _openssl(
      [
        "req",
        "-x509",
        ...ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        `/CN=${caName}`,
      ],
      dir,
    );
    await Deno.writeTextFile(`${dir}/ext.cnf`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    await _openssl(
      ["req", ...ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost"],
      dir,
    );
    await _openssl([
      "x509",
      "-req",
      "-in",
      "leaf.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "leaf.pem",
      "-days",
      "2",
      "-extfile",
      "ext.cnf",
    ], dir);
    return {
      ca: await Deno.readTextFile(`${dir}/ca.pem`),
      cert: await Deno.readTextFile(`${dir}/leaf.pem`),
      key: await Deno.readTextFile(`${dir}/leaf.key`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Paths written by {@link writeCerts}. */
export interface CertFiles {
  /** The CA certificate: `<dir>/<name>-ca.pem`. */
  ca: string;
  /** The leaf certificate: `<dir>/<name>.pem`. */
  cert: string;
  /** The leaf key: `<dir>/<name>.key`. */
  key: string;
}

/**
 * Writes `certs` as `<name>-ca.pem`, `<name>.pem` and `<name>.key` in `dir` (replacing them).
 *
 * @example
 * ```ts
 * const files = await writeCerts(dir, "server", await makeCerts());
 * await Gateway.start({ tls: { certFile: files.cert, keyFile: files.key } });
 * ```
 */
export async function writeCerts(dir: string, name: string, certs: TestCerts): Promise<CertFiles> {
  const files = {
    ca: `${dir}/${name}-ca.pem`,
    cert: `${dir}/${name}.pem`,
    key: `${dir}/${name}.key`,
  };
  await Deno.writeTextFile(files.ca, certs.ca);
  await Deno.writeTextFile(files.cert, certs.cert);
  await Deno.writeTextFile(files.key, certs.key);
  return files;
}
