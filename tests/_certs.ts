/** Test certificates made by openssl: a CA and a leaf for 127.0.0.1/localhost signed by it.
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

/** Makes a CA and a P-256 leaf for `IP:127.0.0.1, DNS:localhost` in a temp dir (removed after). */
export async function makeCerts(): Promise<TestCerts> {
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
        "/CN=ca",
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
