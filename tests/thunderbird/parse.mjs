// Reads an autoconfig document the way Thunderbird does, with Thunderbird's own code:
// Debian's thunderbird package's readFromXML.sys.mjs and JXON.sys.mjs (and what they
// import), which scripts/thunderbird-parser takes from its omni.ja. Nothing here reads
// the document's settings or judges them: this file only gives those modules the
// environment Gecko would (ChromeUtils, Ci, Cu, Services.prefs, Localization, dump),
// turns the text into a DOM with @xmldom/xmldom where Gecko's DOMParser would, and
// prints what Thunderbird made of it as JSON:
//   {"ok": true, "incoming": {...}, "incomingAlternatives": [...], "outgoing": {...},
//    "outgoingAlternatives": [...], "domains": [...], "displayName": "...", "logged": [...]}
//   {"ok": false, "error": "...", "logged": [...]}
// `logged` is what Thunderbird's code wrote to its console while reading (the entries it
// dropped, and why). A document Thunderbird rejects exits 0 with ok false; a harness
// that cannot load Thunderbird's code exits 2.
//
// Usage: node parse.mjs DIR FILE, DIR as printed by scripts/thunderbird-parser.

import { createRequire, register } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { fileFor } from "./hooks.mjs";

if (process.argv.length !== 4) {
  process.stderr.write("usage: node parse.mjs DIR FILE\n");
  process.exit(2);
}
const [dir, file] = process.argv.slice(2).map(path => resolve(path));
const omni = pathToFileURL(join(dir, "omni") + "/").href;
register("./hooks.mjs", import.meta.url, { data: { omni } });

// What Thunderbird's code writes to its console (and dump) while it reads.
const logged = [];
const text = value =>
  value instanceof Error ? `${value.name}: ${value.message}` : String(value);
// Gecko's console, and its createInstance() with a prefix and a least level.
const LEVELS = ["all", "debug", "log", "info", "warn", "error"];
const makeConsole = (prefix, least = "all") => {
  const log =
    level =>
    (...args) => {
      if (LEVELS.indexOf(level) >= LEVELS.indexOf(least.toLowerCase())) {
        logged.push(`${prefix}${level}: ${args.map(text).join(" ")}`);
      }
    };
  return {
    error: log("error"),
    warn: log("warn"),
    log: log("log"),
    info: log("info"),
    debug: log("debug"),
    createInstance: ({ prefix = "", maxLogLevel = "all" } = {}) =>
      makeConsole(`${prefix} `, maxLogLevel),
  };
};
globalThis.console = makeConsole("");
globalThis.dump = message => logged.push(`dump: ${String(message).trimEnd()}`);

// XPCOM constants, as MailNewsTypes2.idl defines them.
globalThis.Ci = {
  nsMsgSocketType: { plain: 0, trySTARTTLS: 1, alwaysSTARTTLS: 2, SSL: 3 },
  nsMsgAuthMethod: {
    none: 1,
    old: 2,
    passwordCleartext: 3,
    passwordEncrypted: 4,
    GSSAPI: 5,
    NTLM: 6,
    External: 7,
    secure: 8,
    anything: 9,
    OAuth2: 10,
  },
};
// Run as under Thunderbird's own tests: InputSanitizer then names the bad value.
globalThis.Cu = { isInAutomation: true };

const absent = what =>
  new Proxy(
    {},
    {
      get(_, name) {
        if (typeof name === "symbol") {
          return undefined;
        }
        throw new Error(`harness: ${what}.${name} is not provided by parse.mjs`);
      },
    }
  );
globalThis.Cc = absent("Cc");

// Preferences: Thunderbird's defaults for those the parser reads. mail.graph.enabled
// is a static preference (compiled into libxul), off in release builds.
const PREFS = { "mail.graph.enabled": false };
const pref = (name, fallback) => {
  if (name in PREFS) {
    return PREFS[name];
  }
  if (fallback !== undefined) {
    return fallback;
  }
  throw new Error(`harness: preference ${name} is not set (NS_ERROR_UNEXPECTED)`);
};
const services = absent("Services");
globalThis.Services = new Proxy(
  {
    prefs: {
      getBoolPref: pref,
      getIntPref: pref,
      getCharPref: pref,
      getStringPref: pref,
    },
  },
  {
    get(target, name) {
      return name in target ? target[name] : services[name];
    },
  }
);

// Fluent: the en-US messages from omni.ja (simple `id = text` entries, as the
// account-creation ones are).
globalThis.Localization = class Localization {
  constructor(resources) {
    this.messages = new Map();
    for (const resource of resources) {
      const path = join(dir, "omni/localization/en-US", resource);
      if (!existsSync(path)) {
        continue;
      }
      for (const line of readFileSync(path, "utf8").split("\n")) {
        const m = /^([a-zA-Z][\w-]*)\s*=\s*(.*)$/.exec(line);
        if (m) {
          this.messages.set(m[1], m[2]);
        }
      }
    }
  }
  formatValueSync(id) {
    return this.messages.get(id) ?? id;
  }
  async formatValue(id) {
    return this.formatValueSync(id);
  }
};

// ChromeUtils: lazy module getters resolve to modules imported up front (below).
const loaded = new Map();
const lazyModules = new Set();
const settle = (target, name, value) =>
  Object.defineProperty(target, name, {
    value,
    configurable: true,
    enumerable: true,
    writable: true,
  });
globalThis.ChromeUtils = {
  defineESModuleGetters(target, modules) {
    for (const [name, specifier] of Object.entries(modules)) {
      lazyModules.add(specifier);
      Object.defineProperty(target, name, {
        configurable: true,
        enumerable: true,
        get() {
          const module = loaded.get(specifier);
          if (!module) {
            throw new Error(
              `harness: ${specifier} is not loaded (scripts/thunderbird-parser did not take it from omni.ja)`
            );
          }
          return settle(target, name, module[name])[name];
        },
      });
    }
  },
  defineLazyGetter(target, name, getter) {
    Object.defineProperty(target, name, {
      configurable: true,
      enumerable: true,
      get() {
        return settle(target, name, getter.call(target))[name];
      },
    });
  },
  importESModule(specifier) {
    const module = loaded.get(specifier);
    if (!module) {
      throw new Error(`harness: ${specifier} is not loaded`);
    }
    return module;
  },
  generateQI() {
    return function QueryInterface() {
      return this;
    };
  },
};

async function load(specifier) {
  loaded.set(specifier, await import(specifier));
}

let readFromXML, JXON, DOMParser;
try {
  await load("resource:///modules/accountcreation/readFromXML.sys.mjs");
  await load("resource:///modules/JXON.sys.mjs");
  // Every module imported lazily that scripts/thunderbird-parser took, and theirs.
  for (;;) {
    const next = [...lazyModules].filter(
      s =>
        !loaded.has(s) &&
        fileFor(s, omni) !== null &&
        existsSync(fileURLToPath(fileFor(s, omni)))
    );
    if (!next.length) {
      break;
    }
    for (const specifier of next) {
      await load(specifier);
    }
  }
  readFromXML = loaded.get(
    "resource:///modules/accountcreation/readFromXML.sys.mjs"
  ).readFromXML;
  JXON = loaded.get("resource:///modules/JXON.sys.mjs").JXON;
  DOMParser = createRequire(join(dir, "package.json"))(
    "@xmldom/xmldom"
  ).DOMParser;
} catch (e) {
  process.stderr.write(`parse.mjs: cannot load Thunderbird's parser: ${e.stack}\n`);
  process.exit(2);
}

const print = value => process.stdout.write(JSON.stringify(value) + "\n");
const server = s => JSON.parse(JSON.stringify(s));

// Gecko's DOMParser (FetchHTTP takes responseXML, built the same way) never throws:
// a document that is not well-formed becomes a <parsererror> one, which readFromXML
// refuses. Here any error xmldom reports is that refusal.
const xmlErrors = [];
let dom;
try {
  dom = new DOMParser({
    onError(level, message) {
      if (level === "warning") {
        logged.push(`xml warning: ${message}`);
      } else {
        xmlErrors.push(`${level}: ${message}`);
      }
    },
  }).parseFromString(readFileSync(file, "utf8"), "text/xml");
} catch (e) {
  xmlErrors.push(text(e));
}
if (xmlErrors.length) {
  print({ ok: false, error: `not well-formed XML: ${xmlErrors.join("; ")}`, logged });
  process.exit(0);
}

try {
  const config = readFromXML(JXON.build(dom), "test");
  print({
    ok: true,
    incoming: server(config.incoming),
    incomingAlternatives: config.incomingAlternatives.map(server),
    outgoing: server(config.outgoing),
    outgoingAlternatives: config.outgoingAlternatives.map(server),
    domains: config.domains,
    displayName: config.displayName,
    logged,
  });
} catch (e) {
  print({ ok: false, error: text(e), logged });
}
