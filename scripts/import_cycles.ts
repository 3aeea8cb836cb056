/** `deno task check` step: fails when the project's own modules import each other in a circle.
 * Reads the module graph from `deno info --json` for every entry point and runs Tarjan's
 * strongly-connected-components algorithm over the project's `file:` modules (npm and other
 * remote modules are left out). Exit 1 with each cycle printed; exit 0 and silence otherwise.
 * @module */

const ROOT = new URL("..", import.meta.url);

/** Entry points whose graphs together cover the project. */
const ENTRIES = [
  "main.ts",
  "src/mod.ts",
  ...["auth", "client", "log", "nats", "protocol", "server", "session", "streams", "transport"]
    .map((layer) => `src/${layer}/mod.ts`),
  "bench/main.ts",
];

interface _Info {
  modules: Array<{
    specifier: string;
    dependencies?: Array<{ code?: { specifier?: string }; type?: { specifier?: string } }>;
  }>;
}

/** The project's import graph: module → modules it imports (file: modules under ROOT only). */
export async function importGraph(entries = ENTRIES): Promise<Map<string, Set<string>>> {
  const graph = new Map<string, Set<string>>();
  const own = (s: string | undefined): s is string => !!s && s.startsWith(ROOT.href);
  for (const entry of entries) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", new URL(entry, ROOT).pathname],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`deno info ${entry}: ${new TextDecoder().decode(out.stderr)}`);
    }
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as _Info;
    for (const m of info.modules) {
      if (!own(m.specifier)) continue;
      const deps = graph.get(m.specifier) ?? new Set<string>();
      for (const d of m.dependencies ?? []) {
        for (const s of [d.code?.specifier, d.type?.specifier]) if (own(s)) deps.add(s);
      }
      graph.set(m.specifier, deps);
    }
  }
  return graph;
}

/**
 * The cycles of a directed graph: its strongly connected components with more than one node,
 * or a node that imports itself (Tarjan's algorithm).
 *
 * @example
 * ```ts
 * cycles(new Map([["a", new Set(["b"])], ["b", new Set(["a"])]])); // [["a", "b"]]
 * ```
 */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) !== idx.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || graph.get(v)?.has(v)) out.push(scc.sort());
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

if (import.meta.main) {
  const found = cycles(await importGraph());
  for (const c of found) {
    console.error(`import cycle: ${c.map((s) => s.slice(ROOT.href.length)).join(" <-> ")}`);
  }
  Deno.exit(found.length > 0 ? 1 : 0);
}
