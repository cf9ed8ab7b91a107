// The script-tag build: src/script-tag.js and the ES module bundled by esbuild into one IIFE
// (dist/t.js, minified, ES2017 so that every browser the gateway's users run has what it needs).
// `npm run build`, or buildScriptTag(outfile) from a test.
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = fileURLToPath(new URL(".", import.meta.url));

export async function buildScriptTag(outfile = `${here}dist/t.js`) {
  await esbuild.build({
    entryPoints: [`${here}src/script-tag.js`],
    bundle: true,
    format: "iife",
    minify: true,
    target: "es2017",
    legalComments: "none",
    banner: { js: "/* livemetrics browser tracker (@livemetrics/tracker script-tag build): docs/ingest.md */" },
    outfile,
    logLevel: "silent",
  });
  return outfile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = await buildScriptTag(process.argv[2]);
  console.log(`built ${out}`);
}
