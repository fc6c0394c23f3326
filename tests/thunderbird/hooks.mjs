// Node module hooks for parse.mjs: Thunderbird's modules import each other by
// resource:// (and moz-src://) URLs; these resolve them to the files that
// scripts/thunderbird-parser took from omni.ja, at the same paths they have in it.
// In Thunderbird's single omni.ja, resource:/// (the application) and resource://gre/
// (the toolkit) both name its modules/ folder.

const PREFIXES = [
  ["resource:///modules/", "modules/"],
  ["resource://gre/modules/", "modules/"],
  ["moz-src:///", "moz-src/"],
];

/** The file URL of `specifier` under `omni` (a file URL ending in /), or null. */
export function fileFor(specifier, omni) {
  for (const [prefix, dir] of PREFIXES) {
    if (specifier.startsWith(prefix)) {
      return new URL(dir + specifier.slice(prefix.length), omni).href;
    }
  }
  return null;
}

let omni;

export async function initialize(data) {
  omni = data.omni;
}

export async function resolve(specifier, context, nextResolve) {
  const url = fileFor(specifier, omni);
  if (url) {
    return { url, format: "module", shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
