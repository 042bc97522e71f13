// Node module resolve hook (registered by load-app.ts through node:module register): apps import from
// "labelgraph", which resolves by package self-reference inside this repository but not in an app folder
// copied elsewhere (`labelgraph apps --download ... --output /tmp/myapp`). This maps the bare specifier
// to this package's own entry, so every app shares one copy of labelgraph's classes.
const entry = new URL("../index.ts", import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier === "labelgraph") {
    // Through the rest of the chain, so a TypeScript loader registered after this hook (tsx in a worker) sees it.
    return next(entry, context);
  }
  return next(specifier, context);
}
