/** Removal of scratch paths (download dirs, server temp dirs) shared by install and launcher.
 * @module */

/**
 * Removes a scratch path of ours (a download dir, a server's temp dir). Failure is ignored on
 * purpose: it is only already gone, or a non-empty store dir kept by the caller (`recursive`
 * false), and a leftover under the OS temp dir must never fail a stop or hide the real error.
 */
export async function removeScratch(path: string, recursive = true): Promise<void> {
  try {
    await Deno.remove(path, { recursive });
  } catch {
    // see above: nothing to do
  }
}
