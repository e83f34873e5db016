// Runs the pad's test vectors under real MicroPython (the WebAssembly port) and prints the results as JSON.
// usage: node run.mjs FIRMWARE_DIR VECTORS_JSON
import { readFileSync } from "node:fs";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const [firmwareDir, vectorsPath] = process.argv.slice(2);
if (!firmwareDir || !vectorsPath) {
  console.error("usage: node run.mjs FIRMWARE_DIR VECTORS_JSON");
  process.exit(2);
}
const out = [];
const err = [];
const mp = await loadMicroPython({ stdout: (l) => out.push(l), stderr: (l) => err.push(l) });
mp.FS.mkdirTree("/pad");
mp.FS.mkdirTree("/work");
for (const name of ["padcore.py", "padjournal.py"]) {
  mp.FS.writeFile("/pad/" + name, readFileSync(firmwareDir + "/" + name));
}
mp.FS.writeFile("/pad/runvectors.py", readFileSync(new URL("./runvectors.py", import.meta.url)));
mp.FS.writeFile("/work/vectors.json", readFileSync(vectorsPath));
try {
  mp.runPython(`
import sys, json
sys.path.insert(0, "/pad")
import runvectors
with open("/work/vectors.json") as f:
    vectors = json.load(f)
print("RESULT " + json.dumps({"implementation": sys.implementation.name, "results": runvectors.run(vectors, "/work")}))
`);
} catch (e) {
  console.error(err.join("\n"));
  console.error(String(e));
  process.exit(1);
}
const line = out.find((l) => l.startsWith("RESULT "));
if (!line) {
  console.error(err.join("\n"));
  process.exit(1);
}
process.stdout.write(line.slice(7) + "\n");
