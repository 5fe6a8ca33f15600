// Load and start Cornerstone3D once for the page, in two steps: first what
// drawing an image needs (core with CPU rendering, faster than WebGL on the
// clinics' GPU-less servers and in headless Chromium, and the DICOM loader with
// its decode worker and wasm codecs), then, once the first image is on screen,
// the mouse tools.

export const RENDERING_ENGINE_ID = "pacs_lite";
export const TOOL_GROUP_ID = "pacs_lite_tools";
const DECODE_WORKER = "dicomImageLoader"; // the name the loader registers its decode workers under

// The tool classes the viewer registers, by their Cornerstone names.
const TOOL_CLASSES = [
  "WindowLevelTool", "ZoomTool", "PanTool", "StackScrollTool",
  "LengthTool", "AngleTool", "RectangleROITool", "EllipticalROITool", "ProbeTool",
];

let startup = null;
let toolsStartup = null;

/**
 * Import the image bundle (its versioned URL) and initialise it; the codecs' wasm files are in wasmUrl,
 * the loader's decode worker is workerUrl.
 * `onRequestError(status)` hears every failed image request (401, 404, 502, 0 for no answer).
 * Resolve to {core, dicomImageLoader, dicomParser, tools}, where tools is null until startTools
 * fills it in; later calls reuse it.
 */
export function startCornerstone({ bundleUrl, wasmUrl, workerUrl }, onRequestError) {
  if (!startup) startup = start(bundleUrl, wasmUrl, workerUrl, onRequestError);
  return startup;
}

/**
 * Cornerstone 5.14's loadAndCacheImage drops the promise of cache.putImageLoadObject, which rejects
 * again when a load fails: every image that cannot be fetched or decoded would also be an "unhandled
 * rejection". Mark that copy handled; the failure still reaches the viewer through the load's own
 * promise and the IMAGE_LOAD_ERROR event.
 */
function markCacheFailuresHandled(cache) {
  const put = cache.putImageLoadObject.bind(cache);
  cache.putImageLoadObject = (imageId, imageLoadObject) => {
    const cached = put(imageId, imageLoadObject);
    cached.catch(() => {});
    return cached;
  };
}

/**
 * Cornerstone's own scrolling (the wheel) leaves the promise of an image that failed to load unhandled.
 * The viewer shows those failures from the IMAGE_LOAD_ERROR event, which carries the same error just
 * before the promise rejects: keep such an error out of the console as an "unhandled rejection" too.
 * Any other unhandled rejection still shows.
 */
function quietReportedFailures(core) {
  const reported = new Set();
  core.eventTarget.addEventListener(core.Enums.Events.IMAGE_LOAD_ERROR, (event) => {
    const { error } = event.detail;
    reported.add(error);
    setTimeout(() => reported.delete(error), 10_000);
  });
  window.addEventListener("unhandledrejection", (event) => {
    if (reported.has(event.reason)) event.preventDefault();
  });
}

/**
 * Give the loader decode workers of which the first is already running. The loader starts its own
 * workers in init(), once the bundle has run; one started with the page has loaded and compiled its
 * script by then, on the other core, so the first image need not wait for that.
 */
function useStartedWorker(core, worker, workerUrl) {
  const manager = core.getWebWorkerManager();
  manager.terminate(DECODE_WORKER); // the ones init() just started, before they did any work
  let started = worker;
  manager.registerWorker(DECODE_WORKER, () => {
    const next = started || new Worker(workerUrl, { type: "module" });
    started = null;
    return next;
  }, { maxWorkerInstances: decodeWorkerCount(), overwrite: true });
}

/** Return how many decode workers to run: half the cores, as the loader chooses by default. */
function decodeWorkerCount() {
  return Math.max(1, Math.floor((navigator.hardwareConcurrency || 2) / 2));
}

/** Do the work of startCornerstone. */
async function start(bundleUrl, wasmUrl, workerUrl, onRequestError) {
  const worker = new Worker(workerUrl, { type: "module" });
  const { core, dicomImageLoader, dicomParser } = await import(bundleUrl);
  markCacheFailuresHandled(core.cache);
  quietReportedFailures(core);
  core.init({ rendering: { useCPURendering: true } });
  dicomImageLoader.init({
    wasmBasePath: new URL(wasmUrl, window.location.href).href,
    errorInterceptor: (error) => onRequestError(error.status || 0),
    maxWebWorkers: decodeWorkerCount(),
  });
  useStartedWorker(core, worker, workerUrl);
  return { core, dicomImageLoader, dicomParser, tools: null };
}

/**
 * Import the tools bundle (its versioned URL), initialise it and register the viewer's tools.
 * Resolve to the tools namespace, also set as cs.tools; later calls reuse it.
 */
export function startTools(cs, bundleUrl) {
  if (!toolsStartup) {
    toolsStartup = import(bundleUrl).then(({ tools }) => {
      tools.init();
      for (const name of TOOL_CLASSES) tools.addTool(tools[name]);
      cs.tools = tools;
      return tools;
    });
  }
  return toolsStartup;
}
