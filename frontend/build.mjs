/**
 * Build pacs_lite's browser bundles from npm packages and our viewer modules into static/vendor/.
 *
 * Run with `npm ci && npm run build`. Clinics are offline, so everything a
 * page loads comes from here, never from a CDN. The script writes:
 *
 *   static/vendor/bootstrap/    bootstrap.min.css, bootstrap.bundle.min.js
 *   static/vendor/cornerstone/  cornerstone.js (what drawing an image needs:
 *                               frontend/cornerstone-entry.js),
 *                               cornerstone-tools.js (the mouse tools:
 *                               frontend/cornerstone-tools-entry.js),
 *                               chunk-<hash>.js (code both share, named by
 *                               its content, so browsers keep it for a year),
 *                               and decodeImageFrameWorker.js (the loader's
 *                               decode worker, under the exact name the
 *                               loader asks for, next to the loader's code)
 *   static/vendor/cornerstone/wasm/  the codec .wasm files; pages pass this
 *                               folder's URL to the loader as `wasmBasePath`
 *   static/vendor/viewer/       viewer.js: the viewer page's own modules
 *                               (static/js/viewer/main.js and its imports) as
 *                               one file, so that a page load fetches one
 *                               versioned file instead of a dozen small ones
 *
 * JPEG-XL (transfer syntaxes 1.2.840.10008.1.2.4.110-112) is left out: no
 * modality or Orthanc in our clinics produces it, and its codec is 1 MB of
 * the 2 MB of wasm. `--with-jpeg-xl` puts it back.
 */
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FRONTEND = join(ROOT, 'frontend');
const VENDOR = join(ROOT, 'static', 'vendor');
const CORNERSTONE = join(VENDOR, 'cornerstone');
const VIEWER = join(VENDOR, 'viewer');
const OPTIONS = ['--with-jpeg-xl'];
const unknown = process.argv.slice(2).filter((arg) => !OPTIONS.includes(arg));
if (unknown.length) {
  console.error(`build: unknown option ${unknown.join(' ')} (known: ${OPTIONS.join(' ')})`);
  process.exit(2);
}
const withJpegXl = process.argv.includes('--with-jpeg-xl');

/** The codec wasm files the decode worker fetches, by package and file name. */
const WASM_FILES = [
  ['@cornerstonejs/codec-charls', 'charlswasm_decode.wasm'], // JPEG-LS
  ['@cornerstonejs/codec-libjpeg-turbo-8bit', 'libjpegturbowasm_decode.wasm'], // JPEG baseline
  ['@cornerstonejs/codec-openjpeg', 'openjpegwasm_decode.wasm'], // JPEG 2000
  ['@cornerstonejs/codec-openjph', 'openjphjs.wasm'], // HTJ2K
  ...(withJpegXl ? [['@cornerstonejs/codec-libjxl', 'jpegxlwasm_decode.wasm']] : []),
];

/** Node built-ins reached only by the Node branches of the codec glue code. */
const NODE_BUILTINS = ['fs', 'path', 'module', 'url', 'crypto', 'worker_threads'];

/** Return the folder of an installed package, looked up the way Node would from `fromDir`. */
function packageDir(name, fromDir = ROOT) {
  const searchPaths = createRequire(join(fromDir, 'package.json')).resolve.paths(name) ?? [];
  const dir = searchPaths.map((base) => join(base, name)).find((d) => existsSync(join(d, 'package.json')));
  if (!dir) throw new Error(`package ${name} is not installed: run npm ci first`);
  return dir;
}

/** Return the version of an installed package. */
function packageVersion(name) {
  return JSON.parse(readFileSync(join(packageDir(name), 'package.json'), 'utf8')).version;
}

/** The options the Cornerstone builds share. */
function cornerstoneOptions() {
  const alias = { xmlbuilder2: join(FRONTEND, 'xmlbuilder2-stub.js') };
  if (!withJpegXl) {
    alias['@cornerstonejs/codec-libjxl/decodewasmjs'] = join(FRONTEND, 'jpegxl-stub.js');
  }
  return {
    absWorkingDir: ROOT,
    outdir: CORNERSTONE,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    alias,
    external: NODE_BUILTINS,
    define: { 'process.env.NODE_ENV': '"production"' },
    metafile: true,
    logLevel: 'warning',
  };
}

/**
 * Bundle Cornerstone as two ES modules that share chunks: what an image needs, and the tools.
 * Return the paths written.
 */
async function buildCornerstone() {
  const result = await esbuild.build({
    ...cornerstoneOptions(),
    entryPoints: {
      cornerstone: join(FRONTEND, 'cornerstone-entry.js'),
      'cornerstone-tools': join(FRONTEND, 'cornerstone-tools-entry.js'),
    },
    splitting: true,
    chunkNames: 'chunk-[hash]',
  });
  return Object.keys(result.metafile.outputs).map((file) => join(ROOT, file));
}

/** Bundle the loader's decode worker on its own (a worker shares no module with the page). */
async function buildWorker() {
  const loaderDir = packageDir('@cornerstonejs/dicom-image-loader');
  const result = await esbuild.build({
    ...cornerstoneOptions(),
    entryPoints: {
      decodeImageFrameWorker: join(loaderDir, 'dist', 'esm', 'decodeImageFrameWorker.js'),
    },
  });
  return Object.keys(result.metafile.outputs).map((file) => join(ROOT, file));
}

/** Bundle the viewer page's modules into static/vendor/viewer/viewer.js. Return the paths written. */
async function buildViewer() {
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: { viewer: join(ROOT, 'static', 'js', 'viewer', 'main.js') },
    outdir: VIEWER,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    metafile: true,
    logLevel: 'warning',
  });
  return Object.keys(result.metafile.outputs).map((file) => join(ROOT, file));
}

/** Copy the codec wasm files into static/vendor/cornerstone/wasm/. */
async function copyWasm() {
  const wasmDir = join(CORNERSTONE, 'wasm');
  await mkdir(wasmDir, { recursive: true });
  const loaderDir = packageDir('@cornerstonejs/dicom-image-loader');
  for (const [pkg, file] of WASM_FILES) {
    await copyFile(join(packageDir(pkg, loaderDir), 'dist', file), join(wasmDir, file));
  }
}

/** Copy Bootstrap's compiled CSS and JS (with Popper) into static/vendor/bootstrap/. */
async function copyBootstrap() {
  const dist = join(packageDir('bootstrap'), 'dist');
  const out = join(VENDOR, 'bootstrap');
  await mkdir(out, { recursive: true });
  await copyFile(join(dist, 'css', 'bootstrap.min.css'), join(out, 'bootstrap.min.css'));
  await copyFile(join(dist, 'js', 'bootstrap.bundle.min.js'), join(out, 'bootstrap.bundle.min.js'));
}

/** Write file.gz beside each file, for the app to send to browsers that accept gzip. */
async function writeGzipped(files) {
  for (const file of files) {
    await writeFile(`${file}.gz`, gzipSync(readFileSync(file), { level: 9 }));
  }
}

/** Print each written file with its raw and gzip size, then the total. */
async function printSummary(files) {
  let total = 0;
  for (const file of files) {
    const { size } = await stat(file);
    const gz = (await stat(`${file}.gz`)).size;
    total += size;
    const kb = (n) => `${(n / 1024).toFixed(0).padStart(6)} KiB`;
    console.log(`  ${relative(ROOT, file).padEnd(58)} ${kb(size)}  (gzip ${kb(gz).trim()})`);
  }
  console.log(`  total ${(total / 1024 / 1024).toFixed(2)} MiB`);
}

/** Build everything from scratch, so that no stale file lingers; record the versions used. */
async function main() {
  const started = Date.now();
  await rm(VENDOR, { recursive: true, force: true });
  const [cornerstone, worker, viewer] = await Promise.all([
    buildCornerstone(), buildWorker(), buildViewer(), copyWasm(), copyBootstrap(),
  ]);
  const versions = Object.fromEntries(
    ['@cornerstonejs/core', '@cornerstonejs/tools', '@cornerstonejs/dicom-image-loader', 'dicom-parser', 'bootstrap']
      .map((name) => [name, packageVersion(name)]),
  );
  await writeFile(join(VENDOR, 'VERSIONS.json'), `${JSON.stringify({ jpegXl: withJpegXl, versions }, null, 2)}\n`);
  const files = [
    join(VENDOR, 'bootstrap', 'bootstrap.min.css'),
    join(VENDOR, 'bootstrap', 'bootstrap.bundle.min.js'),
    ...cornerstone.sort(),
    ...worker,
    ...viewer,
    ...WASM_FILES.map(([, file]) => join(CORNERSTONE, 'wasm', file)),
  ];
  await writeGzipped(files);
  console.log(`static/vendor/ built in ${((Date.now() - started) / 1000).toFixed(1)} s:`);
  await printSummary(files);
}

main().catch((error) => {
  console.error(`build failed: ${error.message}`);
  process.exit(1);
});
